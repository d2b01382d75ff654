// The audit log (admins): filters by operation, user, resource and time, and the chain's verification.
import { get, qs } from './api.js';
import { h, clear, field, flash, fmt_time, select, fill } from './ui.js';

// A datetime-local value (the browser's local time) as RFC 3339 UTC.
const to_utc = (v) => (v ? new Date(v).toISOString().replace(/\.\d+Z$/, 'Z') : '');

export async function render(main, ctx) {
  document.title = 'Audit · CertMate';
  if (!ctx.can('admin')) {
    fill(main, h('h1', {}, 'Audit'), h('p', {}, 'The audit log needs the admin role.'));
    return;
  }
  const f = {
    operation: h('input', { id: 'a-operation', placeholder: 'e.g. create, revoke, denied' }),
    user: h('input', { id: 'a-user' }),
    resource_id: h('input', { id: 'a-resource' }),
    since: h('input', { id: 'a-since', type: 'datetime-local' }),
    until: h('input', { id: 'a-until', type: 'datetime-local' }),
    limit: select([['100', '100'], ['500', '500'], ['1000', '1,000']], '100', { id: 'a-limit' }),
  };
  const verify = h('div', { id: 'audit-verify', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Verifying the chain…'));
  const tbody = h('tbody');
  const count = h('p', { id: 'audit-count' });
  const form = h('form', { class: 'filters', role: 'search' },
    field('Operation', f.operation), field('User', f.user, 'filtered in this page'), field('Resource', f.resource_id),
    field('Since', f.since), field('Until', f.until), field('Newest', f.limit), h('button', { type: 'submit' }, 'Apply'));

  async function load() {
    flash('');
    const r = await get(`/api/audit${qs({ operation: f.operation.value.trim(), resource_id: f.resource_id.value.trim(),
      since: to_utc(f.since.value), until: to_utc(f.until.value), limit: f.limit.value })}`);
    const user = f.user.value.trim().toLowerCase();
    const rows = user ? r.entries.filter((e) => String(e.user || '').toLowerCase().includes(user)) : r.entries;
    clear(tbody);
    for (const e of rows)
      tbody.append(h('tr', {}, h('td', {}, String(e.seq ?? '')), h('td', {}, fmt_time(e.timestamp)), h('td', {}, e.operation),
        h('td', {}, `${e.resource_type || ''} ${e.resource_id || ''}`.trim()), h('td', {}, e.status), h('td', {}, e.user),
        h('td', { class: 'hide-narrow' }, e.ip_address || '')));
    count.textContent = `${rows.length} entries, newest first`;
  }
  form.addEventListener('submit', (ev) => { ev.preventDefault(); load().catch((e) => flash(e.message, 'error')); });

  fill(main, h('h1', {}, 'Audit log'),
    h('section', { class: 'panel', 'aria-labelledby': 'h-verify' }, h('h2', { id: 'h-verify' }, 'Chain verification'), verify),
    form, count,
    h('div', { class: 'table-wrap' }, h('table', { id: 'audit-table' }, h('thead', {}, h('tr', {},
      ['Seq', 'Time', 'Operation', 'Resource', 'Status', 'User', 'Address'].map((t, i) => h('th', { scope: 'col', class: i === 6 ? 'hide-narrow' : null }, t)))), tbody)));
  get('/api/audit/verify').then((v) => {
    fill(verify, h('p', { class: v.ok ? 'st-active' : 'error', id: 'verify-state' },
      v.ok ? `Verified: ${v.entries} entries, ${v.checkpoints_verified} signed checkpoints.`
        : `Verification FAILED at line ${v.bad_line}: ${v.reason}`));
  }).catch((e) => fill(verify, h('p', { class: 'error' }, e.message)));
  await load();
}
