// Follows one upload's progress stream (GET /v1/uploads/{id}/progress, docs/api.md Live progress).
//
// EventSource cannot send an Authorization header, and the bearer token must never go into a URL,
// so each connection uses a 5-minute progress token minted for this one upload. EventSource
// reconnects by itself with Last-Event-ID (the deployed API answers what is new and closes; the
// local stack streams). When the token has expired, the API answers 401 and EventSource gives up:
// the page mints another one and opens `progressUrl&lastEventId=…`, so nothing is seen twice.

const REOPEN_DELAY_MS = 2000
// Reopens in a row without any event in between before the page stops and says so.
const MAX_REOPENS = 5

export class ProgressFeed {
  constructor(api, uploadId, { onEvent, onLost }) {
    this.api = api
    this.uploadId = uploadId
    this.onEvent = onEvent
    this.onLost = onLost
    this.lastEventId = null
    this.source = null
    this.done = false
    this.reopens = 0
  }

  async open() {
    if (this.done) return
    let minted
    try {
      minted = await this.api.progressToken(this.uploadId)
    } catch (error) {
      this.#lost(error)
      return
    }
    if (this.done) return
    const url = this.lastEventId
      ? `${minted.progressUrl}&lastEventId=${encodeURIComponent(this.lastEventId)}`
      : minted.progressUrl
    const source = new EventSource(url)
    this.source = source
    source.onmessage = (message) => {
      this.reopens = 0
      if (message.lastEventId) this.lastEventId = message.lastEventId
      const event = JSON.parse(message.data)
      this.onEvent(event)
      if (event.terminal) this.close()
    }
    source.onerror = () => {
      // CONNECTING: EventSource retries by itself. CLOSED: it was refused (an expired token) or
      // the stream ended without a terminal event it could see.
      if (source.readyState !== EventSource.CLOSED || this.done) return
      this.#reopen()
    }
  }

  #reopen() {
    this.reopens += 1
    if (this.reopens > MAX_REOPENS) {
      this.#lost(new Error('The progress stream keeps closing.'))
      return
    }
    window.setTimeout(() => this.open(), REOPEN_DELAY_MS)
  }

  #lost(error) {
    this.close()
    this.onLost?.(error)
  }

  close() {
    this.done = true
    this.source?.close()
  }
}
