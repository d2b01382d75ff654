// The dashboard's entry point: who is signed in, the navigation, client-side routes.
import { get, token, set_unauthorized_handler, api_error } from './api.js';
import { h, clear, flash, field, rank, fill } from './ui.js';

const routes = [
  [/^\/$/, 'overview', () => import('./page-overview.js')],
  [/^\/audit\/?$/, 'audit', () => import('./page-audit.js')],
  [/^\/client-certificates\/?$/, 'list', () => import('./page-list.js')],
  [/^\/client-certificates\/new\/?$/, 'create', () => import('./page-create.js')],
  [/^\/client-certificates\/batch\/?$/, 'batch', () => import('./page-batch.js')],
  [/^\/client-certificates\/([^/]+)\/?$/, 'detail', () => import('./page-detail.js')],
];

const main = document.getElementById('main');
let session = null; // {name, role, authenticated_by}

export const can = (role) => !!session && rank[session.role] >= rank[role];

export function navigate(path, replace = false) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

function show_session() {
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  nav.hidden = !session;
  who.hidden = !session;
  if (!session) return;
  document.getElementById('who-name').textContent = session.name;
  document.getElementById('who-role').textContent = session.role;
  for (const a of nav.querySelectorAll('[data-min-role]')) {
    if (a.dataset.feature) continue;
    a.hidden = !can(a.dataset.minRole);
  }
  // Batch: only when the server has the batch API.
  const batch = nav.querySelector('[data-feature="batch"]');
  batch.hidden = true;
  if (can('operator')) import('./page-batch.js').then((m) => m.batch_available()).then((ok) => { batch.hidden = !ok; });
  // A certificate session ends when the browser forgets the certificate, not here.
  document.getElementById('sign-out').hidden = session.authenticated_by === 'certificate';
}

function mark_nav(name) {
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.nav === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// Asks the API who we are: with the stored token, or (TLS) the client certificate alone.
// Returns null when signed in, else why not.
async function load_session() {
  const s = await get('/api/session');
  session = s.authenticated ? s : null;
  if (session) return null;
  return token.get() ? 'The token was not accepted.' : '';
}

function sign_in_form(problem) {
  document.title = 'Sign in · CertMate';
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' });
  const err = h('p', { class: 'form-error', role: 'alert', id: 'signin-error' }, problem || '');
  const form = h('form', { class: 'panel signin', novalidate: true },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'Paste an API token (kept in this tab only, sent as a bearer header). ' +
      'On the TLS listener a client certificate that carries a role signs you in without one.'),
    field('API token', input),
    err,
    h('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (!t) { err.textContent = 'Enter a token.'; input.focus(); return; }
    token.set(t);
    let e;
    try { e = await load_session(); } catch (x) { e = x.message; }
    if (e !== null) {
      token.clear();
      err.textContent = e;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    show_session();
    render();
  });
  fill(main, form);
  input.focus();
}

// Each render draws into a view of its own: a page still loading when the user navigates on
// finishes into a view that is no longer shown, instead of replacing the newer page.
let current_view = null;

async function render() {
  flash('');
  if (!session) { sign_in_form(); return; }
  const path = location.pathname;
  for (const [re, name, load] of routes) {
    const m = re.exec(path);
    if (!m) continue;
    mark_nav(name);
    const view = h('div', { class: 'view' }, h('p', { class: 'muted' }, 'Loading…'));
    current_view = view;
    fill(main, view);
    try {
      const page = await load();
      await page.render(view, { session, can, navigate, params: m.slice(1).map(decodeURIComponent) });
    } catch (e) {
      if (e instanceof api_error && e.status === 401) return;
      if (view === current_view)
        fill(view, h('h1', {}, 'Something went wrong'), h('p', { class: 'error', role: 'alert' }, e.message));
    }
    return;
  }
  current_view = null;
  mark_nav('');
  fill(main, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '/' }, 'Back to the overview')));
}

// Same-origin links navigate in place.
document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[href]');
  if (!a || a.hasAttribute('download') || a.target || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/assets/')) return;
  ev.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', render);

document.getElementById('sign-out').addEventListener('click', () => {
  token.clear();
  session = null;
  show_session();
  sign_in_form('Signed out.');
});

set_unauthorized_handler(() => {
  token.clear();
  session = null;
  show_session();
  sign_in_form('Your session is no longer accepted; sign in again.');
});

let problem = null;
try { problem = await load_session(); } catch (e) { problem = e.message; }
if (problem) token.clear();
show_session();
if (session) render();
else sign_in_form(problem);
