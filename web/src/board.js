// One card per file: its byte progress, then the lanes the progress stream reports, the waveform,
// the player, or the refusal with its code. The card's data-* attributes say the same in a form a
// test can read (data-state: waiting | intent | uploading | uploaded | processing | ready | failed
// | refused | duplicate).

import { drawWaveform } from './waveform.js'

const TERMINAL = new Set(['ready', 'failed', 'refused', 'duplicate'])

const BADGES = {
  waiting: 'Waiting',
  intent: 'Preparing',
  uploading: 'Uploading',
  uploaded: 'Stored',
  processing: 'Processing',
  ready: 'Ready',
  failed: 'Failed',
  refused: 'Refused',
  duplicate: 'Duplicate',
}

export function formatBytes(bytes) {
  if (bytes < 1000) return `${bytes} B`
  const units = ['kB', 'MB', 'GB']
  let value = bytes
  let unit = -1
  do {
    value /= 1000
    unit++
  } while (value >= 1000 && unit < units.length - 1)
  return `${value.toFixed(1)} ${units[unit]}`
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'class') node.className = value
    else node.setAttribute(name, value)
  }
  for (const child of children) node.append(child)
  return node
}

export class Board {
  constructor(list, empty) {
    this.list = list
    this.empty = empty
    this.cards = new Map()
  }

  card(file) {
    let card = this.cards.get(file.id)
    if (!card) {
      card = new Card(file)
      this.cards.set(file.id, card)
      this.list.prepend(card.root)
      this.empty.hidden = true
    }
    return card
  }

  remove(fileId) {
    const card = this.cards.get(fileId)
    if (card && card.state === 'waiting') {
      card.root.remove()
      this.cards.delete(fileId)
    }
    this.empty.hidden = this.cards.size > 0
  }
}

export class Card {
  constructor(file) {
    this.state = 'waiting'
    this.lanes = new Map()
    this.size = file.size ?? 0
    this.badge = element('span', { class: 'badge' })
    this.bar = element('progress', { class: 'bytes-bar', max: '1', value: '0' })
    this.bytes = element('span', { class: 'bytes-text' })
    this.status = element('p', { class: 'status' })
    this.processing = element('progress', { class: 'lanes-bar', max: '100', value: '0', hidden: '' })
    this.lanesList = element('ol', { class: 'lanes' })
    this.error = element('p', { class: 'error', hidden: '', role: 'alert' })
    this.canvas = element('canvas', { class: 'waveform', hidden: '', 'aria-label': 'Waveform' })
    this.player = element('audio', { class: 'player', controls: '', preload: 'metadata', hidden: '' })
    this.facts = element('dl', { class: 'facts' })
    this.root = element(
      'li',
      { class: 'upload', 'data-file-name': file.name },
      element(
        'header',
        {},
        element('strong', { class: 'name' }, file.name),
        element('span', { class: 'size' }, formatBytes(this.size)),
        this.badge,
      ),
      element('div', { class: 'bytes' }, this.bar, this.bytes),
      this.status,
      this.error,
      this.processing,
      this.lanesList,
      this.canvas,
      this.player,
      this.facts,
    )
    this.root.dataset.bytesTotal = String(this.size)
    this.root.dataset.bytesUploaded = '0'
    this.root.dataset.partsUploaded = '0'
    this.setState('waiting', 'Press Upload to send it.')
    this.progress(0, this.size)
  }

  get terminal() {
    return TERMINAL.has(this.state)
  }

  setState(state, message) {
    if (state === 'intent') this.clearError()
    this.state = state
    this.root.dataset.state = state
    this.badge.textContent = BADGES[state] ?? state
    if (message !== undefined) this.status.textContent = message
  }

  fact(name, value, key) {
    if (value === undefined || value === null) return
    this.root.dataset[key] = String(value)
    let row = this.facts.querySelector(`[data-fact="${key}"]`)
    if (!row) {
      row = element('div', { 'data-fact': key }, element('dt', {}, name), element('dd'))
      this.facts.append(row)
    }
    row.querySelector('dd').textContent = String(value)
  }

  intent(intent) {
    this.fact('Upload', intent.uploadId, 'uploadId')
    this.fact('Track', intent.trackId, 'trackId')
    this.fact('Method', intent.method, 'method')
    if (intent.multipart) {
      this.fact('Parts', `${intent.multipart.partCount} × ${formatBytes(intent.multipart.partSize)}`, 'parts')
      this.root.dataset.partCount = String(intent.multipart.partCount)
      this.root.dataset.partSize = String(intent.multipart.partSize)
    }
    this.setState('intent', 'Upload intent created; sending the file…')
  }

  progress(uploaded, total) {
    const size = total || this.size
    this.bar.value = size ? uploaded / size : 0
    this.bytes.textContent = `${formatBytes(uploaded)} of ${formatBytes(size)} (${size ? Math.floor((100 * uploaded) / size) : 0} %)`
    this.root.dataset.bytesUploaded = String(uploaded)
    if (this.state === 'intent' && uploaded > 0) this.setState('uploading', 'Sending the file…')
  }

  partUploaded(count) {
    this.root.dataset.partsUploaded = String(count)
  }

  uploaded() {
    this.progress(this.size, this.size)
    if (!this.terminal) this.setState('uploaded', 'The file is in storage; checking it…')
  }

  // A refusal before any byte was sent (the intent), or of the stored file (finalize).
  refused(error, state = 'refused') {
    this.showError(error.code, error.message)
    this.setState(state, state === 'refused' ? 'The upload was refused.' : 'Processing failed.')
  }

  clearError() {
    this.error.hidden = true
    this.error.replaceChildren()
    delete this.error.dataset.code
    delete this.root.dataset.errorCode
  }

  showError(code, message) {
    this.error.replaceChildren(element('code', {}, code), ` ${message}`)
    this.error.dataset.code = code
    this.root.dataset.errorCode = code
    this.error.hidden = false
  }

  // One event of GET /v1/uploads/{id}/progress (docs/api.md, Live progress).
  event(event) {
    if (this.terminal && event.phase !== 'duplicate') return
    if (typeof event.progressPct === 'number') {
      this.processing.hidden = false
      this.processing.value = event.progressPct
      this.root.dataset.progressPct = String(event.progressPct)
    }
    switch (event.phase) {
      case 'validation':
        return this.status.replaceChildren(event.message)
      case 'storage':
        return this.setState('processing', event.message)
      case 'transcoding':
        return this.setState('processing', event.message)
      case 'lane':
        this.setState('processing')
        return this.lane(event)
      case 'ready':
        return this.setState('ready', event.message)
      case 'failed':
        this.showError(event.code ?? 'processing_failed', event.message)
        return this.setState('failed', 'The upload did not become a track.')
      case 'duplicate':
        return this.duplicate(event.trackId, event.message)
      default:
        return undefined
    }
  }

  duplicate(trackId, message) {
    this.fact('Existing track', trackId, 'duplicateOf')
    this.showError('duplicate', `${message} Existing track: ${trackId}.`)
    this.setState('duplicate', 'Already uploaded: nothing was processed again.')
  }

  lane(event) {
    let row = this.lanes.get(event.lane)
    if (!row) {
      row = element('li', { 'data-lane': event.lane })
      this.lanes.set(event.lane, row)
      this.lanesList.append(row)
    }
    row.dataset.state = event.status
    row.textContent = event.message
    row.title = event.code ? `${event.status}: ${event.code}` : event.status
    this.status.textContent = event.message
  }

  waveform(waveform) {
    drawWaveform(this.canvas, waveform.peaks)
    this.canvas.hidden = false
    this.canvas.dataset.peaks = String(waveform.peaks.length)
    this.canvas.dataset.source = waveform.source ?? ''
  }

  play(url, format) {
    this.player.src = url
    this.player.dataset.format = format
    this.player.hidden = false
  }
}
