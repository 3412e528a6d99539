// The upload page: connect (API base URL + token), then Uppy's drop zone and one card per file.
// document.body.dataset.ready says where it got to: "true", "needs-connection" or "error".

import '@uppy/core/css/style.min.css'
import '@uppy/dashboard/css/style.min.css'
import './style.css'

import { Board } from './board.js'
import { check, remember, resolveConnection } from './connection.js'
import { createUploader } from './uploader.js'

const $ = (id) => document.getElementById(id)

function say(state, ...parts) {
  const status = $('connection-status')
  status.dataset.state = state
  status.replaceChildren(...parts)
}

function code(text) {
  const node = document.createElement('code')
  node.textContent = text
  return node
}

async function main() {
  const panel = $('connection')
  const form = $('connection-form')
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const data = new FormData(form)
    remember({ api: String(data.get('api')).trim().replace(/\/+$/, ''), token: String(data.get('token')).trim() })
    // Without the query: an `?api=` there would win over what was just entered.
    window.location.replace(window.location.pathname)
  })

  const connection = await resolveConnection()
  form.elements.api.value = connection.api
  if (!connection.api || !connection.token) {
    panel.open = true
    say('needs-connection', 'Enter the API base URL and a bearer token to upload.')
    document.body.dataset.ready = 'needs-connection'
    return
  }

  let checked
  try {
    checked = await check(connection)
  } catch (error) {
    panel.open = true
    say('error', `${connection.api} refused the token: `, code(error.code ?? 'error'), ` ${error.message}`)
    document.body.dataset.ready = 'error'
    return
  }
  const { client, artist, problem } = checked
  const who = connection.source === 'local-dev' ? ' (local dev token)' : ''
  if (artist) {
    say('connected', `Uploading to ${connection.api} as @${artist.handle}${who}`)
  } else {
    say('warning', `Connected to ${connection.api}${who}, but `, code(problem.code), ` ${problem.message} `,
      'Uploads are refused until the profile exists (PUT /v1/artists/me).')
  }

  // Older deployments have no config route: the page then falls back to S3's own limits.
  const config = await client.uploadConfig().catch(() => null)
  const board = new Board($('uploads'), $('uploads-empty'))
  window.tracklaneUppy = createUploader({
    api: client,
    config,
    board,
    target: '#drop',
    options: () => ({ album: $('album').value.trim(), visibility: $('visibility').value }),
  })
  document.body.dataset.ready = 'true'
}

main().catch((error) => {
  say('error', `The page failed to start: ${error.message}`)
  document.body.dataset.ready = 'error'
})
