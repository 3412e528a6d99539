// Where the page uploads to and as whom.
//
// - On the local stack's own page (`make run`, http://127.0.0.1:8000/upload/) the API is the page's
//   origin and the token is a dev token the stack mints (GET /local/dev-token, same origin only),
//   for the local user `web`, or the one `?user=` names.
// - Anywhere else (another origin, a deployed API) the page takes the API base URL and a token from
//   the Connection form, or from the URL fragment `#api=…&token=…`. A fragment never reaches a
//   server or a Referer; the page removes it from the address bar as soon as it has read it. The
//   pair is kept in sessionStorage: this tab only, gone when it closes.

import { Api, ApiError } from './api.js'

const STORAGE_KEY = 'tracklane.connection'

function fromFragment() {
  const fragment = new URLSearchParams(window.location.hash.replace(/^#/, ''))
  const found = { api: fragment.get('api'), token: fragment.get('token') }
  if (found.api || found.token) {
    window.history.replaceState(null, '', window.location.pathname + window.location.search)
  }
  return found
}

function stored() {
  try {
    return JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) ?? '{}')
  } catch {
    return {}
  }
}

export function remember({ api, token }) {
  window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ api, token }))
}

// The local stack serves the page under /upload/ next to its API.
function servedByLocalStack() {
  return window.location.pathname.startsWith('/upload/')
}

// The API base URL and token to use, in this order: the fragment, the query (`?api=`, never a
// token), this tab's storage, and on the local stack's page its own origin and a dev token.
export async function resolveConnection() {
  const fragment = fromFragment()
  const query = new URLSearchParams(window.location.search)
  const saved = stored()
  let api = fragment.api || query.get('api') || saved.api || (servedByLocalStack() ? window.location.origin : '')
  let token = fragment.token || saved.token || ''
  let source = token ? 'given' : null
  if (api && !token && new URL(api, window.location.href).origin === window.location.origin) {
    const dev = await devToken(api, query.get('user'))
    if (dev) {
      token = dev.token
      source = 'local-dev'
    }
  }
  api = api.replace(/\/+$/, '')
  // A dev token is minted again on every load (a `?user=` may name another user).
  if (api && token && source === 'given') remember({ api, token })
  return { api, token, source }
}

async function devToken(api, user) {
  const asUser = user ? `?user=${encodeURIComponent(user)}` : ''
  try {
    const response = await fetch(`${api}/local/dev-token${asUser}`, { cache: 'no-store' })
    return response.ok ? await response.json() : null
  } catch {
    return null
  }
}

// Checks the pair against the API: who the token is (the artist profile uploads need).
export async function check({ api, token }) {
  const client = new Api(api, token)
  try {
    const artist = await client.me()
    return { client, artist, problem: null }
  } catch (error) {
    if (error instanceof ApiError && error.code === 'artist_profile_not_found') {
      return { client, artist: null, problem: error }
    }
    throw error
  }
}
