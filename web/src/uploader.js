// Uppy (core, Dashboard, AwsS3) uploading straight to storage through the API's upload intents.
//
// For each file, before any byte moves, a preprocessor asks the API for an intent
// (POST /v1/uploads): that is where a refusal (type, size, entitlement, profile) comes back, with
// its code, and the file stops there. Then Uppy's AwsS3 plugin sends the bytes to S3 itself, every
// request presigned by the API (its `signRequest` option hands out the intent's URLs):
//
// - up to the multipart threshold, one PUT to the intent's `signedUrl`;
// - above it, S3 multipart. The API opens the S3 multipart upload when it makes the intent (it
//   signs every part URL for that UploadId), and Uppy 6 offers no way to plug in an upload that
//   already exists except the resume state it keeps per file (`file.s3Multipart = {uploadId,
//   key}`, what its Golden Retriever restores after a reload). So the page sets that state, and
//   Uppy resumes: ListParts (`s3.listPartsUrl`), the missing parts (each part URL signed for its
//   exact size, refreshed through `parts/urls` before it expires), then CompleteMultipartUpload
//   at S3 (`s3.completeUrl`); removing the file aborts at S3 (`s3.abortUrl`). Uppy cuts the file
//   with `getChunkSize`, which answers the plan's part size.
//
// The S3 put event finalizes the upload by itself; the page also calls `finalizeUrl` once the
// bytes are in, for an immediate answer (a duplicate, a stored file that does not match), and
// follows the progress stream from the moment the intent exists.

import AwsS3 from '@uppy/aws-s3'
import Uppy from '@uppy/core'
import Dashboard from '@uppy/dashboard'

import { ApiError } from './api.js'
import { ProgressFeed } from './progress.js'

const MiB = 1024 * 1024
// What S3 allows when the API's GET /v1/uploads/config cannot be read.
const DEFAULT_LIMITS = {
  thresholdBytes: null,
  defaultPartSize: 16 * MiB,
  minPartSize: 5 * MiB,
  maxPartSize: 5 * 1024 * MiB,
  maxParts: 10000,
  maxPartUrls: 100,
}
// A presigned URL this close to its expiry is signed again before it is used.
const EXPIRY_MARGIN_MS = 60_000
// The players the renditions can feed, best first (docs/api.md: the transcode_* lanes).
const FORMATS = [
  ['aac', 'audio/mp4; codecs="mp4a.40.2"'],
  ['opus', 'audio/ogg; codecs="opus"'],
  ['mp3', 'audio/mpeg'],
]

function expiresSoon(iso) {
  return !iso || Date.parse(iso) - Date.now() < EXPIRY_MARGIN_MS
}

function extension(name) {
  const dot = name.lastIndexOf('.')
  return dot < 0 ? '' : name.slice(dot + 1).toLowerCase()
}

// The type the intent names (and the PUT must carry). A browser gives no type for extensions it
// does not know (often .flac, .opus, .aif): then the API's own type for the extension. A file that
// is not audio keeps its type, and the API says why it refuses it.
export function contentTypeFor(file, acceptedTypes) {
  const accepted = acceptedTypes?.find((entry) => entry.extension === extension(file.name))
  const own = (file.type || '').toLowerCase()
  if (accepted) return accepted.contentTypes.includes(own) ? own : accepted.contentTypes[0]
  return own || 'application/octet-stream'
}

// Parts when the file is above the deployment's threshold, or (none configured) above two of the
// smallest parts S3 allows, so any file S3 would split is resumable. Parts as small as S3 allows,
// as Uppy itself chooses them: a lost connection costs at most one small part.
export function multipartFor(size, limits) {
  const threshold = limits.thresholdBytes ?? 2 * limits.minPartSize
  if (size <= threshold) return null
  const partSize = Math.min(limits.maxPartSize, Math.max(limits.minPartSize, Math.ceil(size / limits.maxParts)))
  return { partSize }
}

class Upload {
  constructor({ api, file, card, limits }) {
    this.api = api
    this.fileId = file.id
    this.card = card
    this.limits = limits
    this.intent = null
    this.parts = new Map()
    this.s3 = null
    this.feed = null
    this.partsUploaded = 0
  }

  get expired() {
    return !this.intent || expiresSoon(this.intent.expiresAt)
  }

  accept(intent) {
    this.intent = intent
    if (intent.multipart) {
      for (const part of intent.multipart.parts) this.parts.set(part.partNumber, part)
      this.partsExpireAt = intent.multipart.partsExpireAt
      this.s3 = intent.multipart.s3
    }
    this.card.intent(intent)
  }

  // The presigned request for one of Uppy's S3 requests on this upload.
  async sign(request) {
    const { method, uploadId, partNumber } = request
    if (!uploadId) {
      if (method === 'PUT' && this.intent.method === 'PUT') {
        return { url: this.intent.signedUrl, headers: this.intent.requiredHeaders }
      }
      throw new Error(`The upload intent has no presigned ${method} for a new object`)
    }
    if (uploadId !== this.s3?.uploadId) throw new Error(`Not this intent's S3 upload: ${uploadId}`)
    if (method === 'PUT') return { url: await this.#partUrl(partNumber) }
    if (expiresSoon(this.s3.expiresAt)) await this.#refresh(1)
    if (method === 'GET') return { url: this.s3.listPartsUrl }
    if (method === 'POST') return { url: this.s3.completeUrl }
    if (method === 'DELETE') return { url: this.s3.abortUrl }
    throw new Error(`No presigned ${method} for an S3 multipart upload`)
  }

  async #partUrl(partNumber) {
    const known = this.parts.get(partNumber)
    if (!known || expiresSoon(this.partsExpireAt)) await this.#refresh(partNumber)
    const part = this.parts.get(partNumber)
    if (!part) throw new Error(`The plan has no part ${partNumber}`)
    return part.url
  }

  async #refresh(from) {
    const fresh = await this.api.partUrls(this.intent.uploadId, from, this.limits.maxPartUrls ?? 100)
    this.parts.clear()
    for (const part of fresh.parts) this.parts.set(part.partNumber, part)
    this.partsExpireAt = fresh.expiresAt
    this.s3 = fresh.s3
  }

  follow(onEvent) {
    this.feed = new ProgressFeed(this.api, this.intent.uploadId, {
      onEvent,
      onLost: (error) => {
        if (!this.card.terminal) this.card.status.textContent = `Lost the progress stream: ${error.message}`
      },
    })
    this.feed.open()
  }

  close() {
    this.feed?.close()
  }
}

export function createUploader({ api, config, board, options, target }) {
  const limits = { ...DEFAULT_LIMITS, ...(config?.multipart ?? {}) }
  const acceptedTypes = config?.acceptedTypes ?? null
  const uploads = new Map() // Uppy file id -> Upload
  const byKey = new Map() // the key Uppy signs for -> Upload
  // Uppy asks for the chunk size with the file's size only (getChunkSize({size})).
  const partSizeBySize = new Map()

  const uppy = new Uppy({ id: 'tracklane', autoProceed: false, allowMultipleUploadBatches: true })
  uppy.use(Dashboard, {
    target,
    inline: true,
    width: '100%',
    height: 340,
    theme: 'light',
    proudlyDisplayPoweredByUppy: false,
    showProgressDetails: true,
    note: 'Audio files up to ' + Math.round((config?.maxAudioBytes ?? 524288000) / 1e6) + ' MB each',
    metaFields: [{ id: 'title', name: 'Title', placeholder: 'the file name' }],
  })
  uppy.use(AwsS3, {
    shouldUseMultipart: (file) => uploads.get(file.id)?.intent?.method === 'MULTIPART',
    getChunkSize: ({ size }) => partSizeBySize.get(size) ?? multipartFor(size, limits)?.partSize ?? size,
    // The single PUT's request carries this key; a multipart upload carries the intent's S3 key.
    generateObjectKey: (file) => file.id,
    signRequest: async (request) => {
      const upload = byKey.get(request.key)
      if (!upload) throw new Error(`No upload intent for ${request.key}`)
      return upload.sign(request)
    },
  })

  const showTrack = async (upload, { play }) => {
    let track
    try {
      track = await api.track(upload.intent.trackId)
    } catch (error) {
      upload.card.status.textContent = `Could not read the track: ${error.code ?? ''} ${error.message}`
      return
    }
    upload.card.fact('Album', track.album, 'album')
    if (track.waveform?.peaks?.length && track.waveform.source === 'analysis') upload.card.waveform(track.waveform)
    if (!play) return
    const probe = document.createElement('audio')
    const format = FORMATS.find(([name, type]) => track.renditions?.[name] && probe.canPlayType(type))?.[0]
    if (!format) return
    try {
      upload.card.play(await api.streamUrl(track.trackId, format), format)
    } catch (error) {
      upload.card.showError(error.code ?? 'stream_unavailable', error.message)
    }
  }

  const onProgressEvent = (upload) => (event) => {
    upload.card.event(event)
    if (event.phase === 'lane' && event.lane === 'waveform' && event.status === 'succeeded') {
      showTrack(upload, { play: false })
    }
    if (event.phase === 'ready') showTrack(upload, { play: true })
  }

  const prepare = async (fileId) => {
    const file = uppy.getFile(fileId)
    if (!file) return
    const known = uploads.get(fileId)
    if (known?.intent && !known.expired) return
    const card = board.card(file)
    const upload = new Upload({ api, file, card, limits })
    uploads.set(fileId, upload)
    card.setState('intent', 'Asking the API for an upload intent…')
    const { album, visibility } = options()
    const multipart = multipartFor(file.size, limits)
    const body = {
      fileName: file.name,
      contentType: contentTypeFor(file, acceptedTypes),
      byteSize: file.size,
      visibility,
      multipart: Boolean(multipart),
      ...(multipart ? { partSize: multipart.partSize } : {}),
      ...(album ? { album } : {}),
      ...(file.meta.title?.trim() ? { title: file.meta.title.trim() } : {}),
    }
    let intent
    try {
      intent = await api.createIntent(body, crypto.randomUUID())
    } catch (error) {
      const refusal = error instanceof ApiError ? error : new ApiError(0, 'intent_failed', error.message)
      card.refused(refusal)
      uppy.emit('upload-error', uppy.getFile(fileId), new Error(`${refusal.code}: ${refusal.message}`))
      return
    }
    if (intent.method === 'MULTIPART' && !intent.multipart?.s3) {
      // An API from before the plan carried S3's own requests: Uppy has nothing to send them to.
      api.cancel(intent.uploadId).catch(() => {})
      const refusal = new ApiError(0, 's3_requests_missing', 'This API answers no presigned S3 requests for parts.')
      card.refused(refusal)
      uppy.emit('upload-error', uppy.getFile(fileId), new Error(`${refusal.code}: ${refusal.message}`))
      return
    }
    upload.accept(intent)
    if (intent.method === 'MULTIPART') {
      const { s3, partSize } = intent.multipart
      partSizeBySize.set(file.size, partSize)
      byKey.set(s3.key, upload)
      // Uppy resumes an S3 multipart upload it finds on the file: this one, opened by the API.
      uppy.setFileState(fileId, { s3Multipart: { uploadId: s3.uploadId, key: s3.key } })
    } else {
      byKey.set(fileId, upload)
    }
    upload.follow(onProgressEvent(upload))
  }

  uppy.addPreProcessor(async (fileIds) => {
    await Promise.all(fileIds.map(prepare))
  })

  uppy.on('file-added', (file) => board.card(file))
  uppy.on('file-removed', (file) => {
    const upload = uploads.get(file.id)
    if (upload?.intent && !upload.card.terminal && ['intent', 'uploading'].includes(upload.card.state)) {
      // Uppy aborts the S3 upload; the intent and its draft track go too.
      upload.close()
      api.cancel(upload.intent.uploadId).catch(() => {})
      upload.card.setState('refused', 'Removed before it was stored: the upload was cancelled.')
    }
    uploads.delete(file.id)
    board.remove(file.id)
  })
  uppy.on('upload-progress', (file, progress) => {
    uploads.get(file.id)?.card.progress(progress.bytesUploaded, progress.bytesTotal)
  })
  uppy.on('s3-multipart:part-uploaded', (file) => {
    const upload = uploads.get(file.id)
    if (!upload) return
    upload.partsUploaded += 1
    upload.card.partUploaded(upload.partsUploaded)
  })
  uppy.on('upload-success', async (file) => {
    const upload = uploads.get(file.id)
    if (!upload) return
    upload.card.uploaded()
    try {
      const answer = await api.finalize(upload.intent.finalizeUrl)
      if (answer?.status === 'duplicate') {
        upload.card.duplicate(answer.trackId, 'You already have a track with exactly these bytes.')
        upload.close()
      } else if (!upload.card.terminal && upload.card.state === 'uploaded') {
        upload.card.setState('processing', 'Stored and verified; processing is queued.')
      }
    } catch (error) {
      upload.card.refused(error, 'failed')
      upload.close()
    }
  })
  uppy.on('upload-error', (file, error) => {
    const upload = file && uploads.get(file.id)
    if (!upload || upload.card.state === 'refused') return
    // A storage request that failed after its retries (S3's own code when it gave one).
    upload.card.showError(error.serviceCode ? `s3_${error.serviceCode}` : 'upload_failed', error.message)
    upload.card.setState('failed', 'Sending the file failed; Retry resumes it.')
  })
  uppy.on('upload-retry', (file) => uploads.get(file.id)?.card.setState('intent', 'Trying again…'))
  uppy.on('retry-all', (files) => {
    for (const file of files) uploads.get(file.id)?.card.setState('intent', 'Trying again…')
  })
  return uppy
}
