// The few tracklane API routes the page uses (docs/api.md), with its error envelope turned into
// ApiError, so every refusal reaches the page with its stable code.

export class ApiError extends Error {
  constructor(status, code, message, body = null) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.body = body
  }
}

export class Api {
  constructor(base, token) {
    this.base = base.replace(/\/+$/, '')
    this.token = token
  }

  url(path) {
    return /^https?:\/\//.test(path) ? path : `${this.base}${path}`
  }

  async request(method, path, { body, auth = true, idempotencyKey, signal } = {}) {
    const headers = {}
    if (auth && this.token) headers.authorization = `Bearer ${this.token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey
    // An intent whose answer was lost is asked for once more under the same Idempotency-Key: the
    // API then answers the first one again instead of making a second intent.
    const attempts = idempotencyKey ? 2 : 1
    for (let attempt = 1; ; attempt++) {
      let response
      try {
        response = await fetch(this.url(path), {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal,
        })
      } catch (error) {
        if (error.name === 'AbortError') throw error
        if (attempt < attempts) continue
        throw new ApiError(
          0,
          'network_error',
          `Could not reach ${this.base} (is it running, and does it allow this page's origin?)`,
        )
      }
      if (response.status >= 500 && attempt < attempts) continue
      return this.#answer(response)
    }
  }

  async #answer(response) {
    if (response.status === 204) return null
    const text = await response.text()
    let body = null
    try {
      body = text ? JSON.parse(text) : null
    } catch {
      body = null
    }
    if (response.ok) return body
    const error = body?.error
    throw new ApiError(
      response.status,
      error?.code ?? body?.status ?? `http_${response.status}`,
      error?.message ?? (text.slice(0, 200) || response.statusText),
      body,
    )
  }

  uploadConfig() {
    return this.request('GET', '/v1/uploads/config', { auth: false })
  }

  me() {
    return this.request('GET', '/v1/artists/me')
  }

  createIntent(body, idempotencyKey) {
    return this.request('POST', '/v1/uploads', { body, idempotencyKey })
  }

  partUrls(uploadId, from, count) {
    return this.request('GET', `/v1/uploads/${uploadId}/parts/urls?from=${from}&count=${count}`)
  }

  finalize(finalizeUrl) {
    return this.request('POST', finalizeUrl, { body: {} })
  }

  cancel(uploadId) {
    return this.request('DELETE', `/v1/uploads/${uploadId}`)
  }

  progressToken(uploadId) {
    return this.request('POST', `/v1/uploads/${uploadId}/progress-tokens`)
  }

  track(trackId) {
    return this.request('GET', `/v1/tracks/${trackId}`)
  }

  // The stream route answers a 302 to a presigned storage URL and needs the bearer header, which an
  // <audio> element cannot send: fetch follows the redirect with the header (browsers drop it at
  // the cross-origin hop), and the URL it ended at is what the player gets. The body is not read.
  async streamUrl(trackId, format) {
    const controller = new AbortController()
    let response
    try {
      response = await fetch(this.url(`/v1/tracks/${trackId}/stream?format=${format}`), {
        headers: { authorization: `Bearer ${this.token}` },
        signal: controller.signal,
      })
    } catch {
      throw new ApiError(0, 'network_error', `Could not open the stream of ${trackId}`)
    }
    if (!response.ok) return this.#answer(response)
    controller.abort()
    return response.url
  }
}
