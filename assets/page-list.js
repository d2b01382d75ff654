// The certificate list: filters, search, sort and paging done by the API, one page at a time.
import { get, qs } from './api.js';
import { h, clear, select, num, fmt_date, status_badge, fill } from './ui.js';
import { batch_available } from './page-batch.js';

const statuses = [['', 'Any status'], ['active', 'Active'], ['expiring', 'Expiring soon'], ['on_hold', 'On hold'],
  ['revoked', 'Revoked'], ['expired', 'Expired']];
const usages = [['', 'Any usage'], ['api-mtls', 'api-mtls'], ['vpn', 'vpn'], ['other', 'other'], ['server', 'server (TLS listener)']];
const sorts = [['-created_at', 'Newest first'], ['created_at', 'Oldest first'], ['expires_at', 'Expires soonest'],
  ['-expires_at', 'Expires latest'], ['common_name', 'Common name A–Z'], ['-common_name', 'Common name Z–A'],
  ['identifier', 'Identifier A–Z']];
const sizes = [['25', '25'], ['50', '50'], ['100', '100']];

export async function render(main, ctx) {
  document.title = 'Certificates · CertMate';
  const params = new URLSearchParams(location.search);
  const state = {
    search: params.get('search') || '', status: params.get('status') || '', usage: params.get('usage') || '',
    sort: params.get('sort') || '-created_at', size: Number(params.get('size')) || 50,
    page: Math.max(1, Number(params.get('page')) || 1),
  };

  const search = h('input', { type: 'search', id: 'f-search', value: state.search, placeholder: 'name, identifier, serial, e-mail' });
  const status = select(statuses, state.status, { id: 'f-status' });
  const usage = select(usages, state.usage, { id: 'f-usage' });
  const sort = select(sorts, state.sort, { id: 'f-sort' });
  const size = select(sizes, String(state.size), { id: 'f-size' });
  const chips = h('div', { class: 'chips', 'aria-label': 'Counts by state' });
  const count = h('p', { id: 'list-count', 'aria-live': 'polite' });
  const tbody = h('tbody');
  const first = h('button', { type: 'button', class: 'secondary' }, '« First');
  const prev = h('button', { type: 'button', class: 'secondary' }, '‹ Previous');
  const next = h('button', { type: 'button', class: 'secondary' }, 'Next ›');
  const last = h('button', { type: 'button', class: 'secondary' }, 'Last »');
  const page_label = h('span', { id: 'page-label' });
  // Selection for a batch revoke, when the server has the batch API.
  const selectable = ctx.can('operator') && (await batch_available());
  const selected = new Set();
  const revoke_sel = h('button', { type: 'button', class: 'danger', id: 'revoke-selected', disabled: true, hidden: !selectable }, 'Revoke selected…');
  const sel_changed = () => {
    revoke_sel.disabled = selected.size === 0;
    revoke_sel.textContent = selected.size ? `Revoke selected (${selected.size})…` : 'Revoke selected…';
  };
  revoke_sel.addEventListener('click', () => ctx.navigate(`/client-certificates/batch?revoke=${encodeURIComponent([...selected].join(','))}`));
  const lab = (text, ctl) => h('div', {}, h('label', { for: ctl.id }, text), ctl);

  fill(main, 
    h('div', { class: 'actions' }, h('h1', {}, 'Certificates'),
      ctx.can('operator') ? h('a', { class: 'button', href: '/client-certificates/new', id: 'new-cert' }, 'New certificate') : null),
    chips,
    h('div', { class: 'filters', role: 'search' }, lab('Search', search), lab('Status', status), lab('Usage', usage),
      lab('Sort', sort), lab('Per page', size)),
    count,
    h('div', { class: 'table-wrap' }, h('table', { id: 'cert-table' },
      h('thead', {}, h('tr', {}, selectable ? h('th', { scope: 'col' }, h('span', { class: 'muted' }, 'Select')) : null, h('th', { scope: 'col' }, 'Identifier'), h('th', { scope: 'col' }, 'Common name'),
        h('th', { scope: 'col', class: 'hide-narrow' }, 'Usage'), h('th', { scope: 'col' }, 'Status'),
        h('th', { scope: 'col', class: 'hide-narrow' }, 'Expires'))),
      tbody)),
    h('nav', { class: 'pager', 'aria-label': 'Pages' }, first, prev, page_label, next, last, revoke_sel));

  get('/api/client-certs/stats').then((st) => {
    fill(chips, 
      h('span', { class: 'badge' }, `Total ${num(st.total)}`),
      ...Object.entries(st.by_state).map(([k, v]) => h('span', { class: `badge st-${k}` }, `${k.replace('_', ' ')} ${num(v)}`)));
  }).catch(() => {});

  let total = 0;
  let seq = 0;
  async function load() {
    const my = ++seq;
    if (!main.isConnected) return; // the user has left this page: leave the address alone
    const q = { limit: state.size, offset: (state.page - 1) * state.size, sort: state.sort, search: state.search,
      status: state.status, usage: state.usage };
    const url_q = { search: state.search, status: state.status, usage: state.usage,
      sort: state.sort === '-created_at' ? '' : state.sort, size: state.size === 50 ? '' : state.size,
      page: state.page === 1 ? '' : state.page };
    history.replaceState(null, '', `/client-certificates${qs(url_q)}`);
    main.setAttribute('aria-busy', 'true');
    const res = await get(`/api/client-certs${qs(q)}`);
    if (my !== seq || !main.isConnected) return; // a newer request won, or the page was left
    total = res.total;
    const pages = Math.max(1, Math.ceil(total / state.size));
    if (state.page > pages && total > 0) { state.page = pages; return load(); }
    clear(tbody);
    for (const c of res.certificates) {
      let box = null;
      if (selectable) {
        box = h('input', { type: 'checkbox', 'aria-label': `Select ${c.identifier}`, checked: selected.has(c.identifier) });
        box.addEventListener('change', () => { if (box.checked) selected.add(c.identifier); else selected.delete(c.identifier); sel_changed(); });
      }
      tbody.append(h('tr', {}, selectable ? h('td', {}, box) : null,
        h('td', {}, h('a', { href: `/client-certificates/${encodeURIComponent(c.identifier)}` }, c.identifier)),
        h('td', {}, c.common_name),
        h('td', { class: 'hide-narrow' }, c.cert_usage),
        h('td', { class: 'status' }, status_badge(c.status)),
        h('td', { class: 'hide-narrow' }, fmt_date(c.expires_at))));
    }
    if (!res.certificates.length) tbody.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No certificates match.')));
    const from = total ? res.offset + 1 : 0;
    count.textContent = `${num(from)}–${num(res.offset + res.certificates.length)} of ${num(total)}`;
    page_label.textContent = `Page ${num(state.page)} of ${num(pages)}`;
    first.disabled = prev.disabled = state.page <= 1;
    next.disabled = last.disabled = state.page >= pages;
    main.setAttribute('aria-busy', 'false');
    main.dataset.loaded = String(seq);
  }

  const refilter = () => { state.page = 1; load(); };
  let timer = 0;
  search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => { state.search = search.value.trim(); refilter(); }, 200); });
  status.addEventListener('change', () => { state.status = status.value; refilter(); });
  usage.addEventListener('change', () => { state.usage = usage.value; refilter(); });
  sort.addEventListener('change', () => { state.sort = sort.value; refilter(); });
  size.addEventListener('change', () => { state.size = Number(size.value); refilter(); });
  first.addEventListener('click', () => { state.page = 1; load(); });
  prev.addEventListener('click', () => { state.page -= 1; load(); });
  next.addEventListener('click', () => { state.page += 1; load(); });
  last.addEventListener('click', () => { state.page = Math.max(1, Math.ceil(total / state.size)); load(); });
  await load();
}
