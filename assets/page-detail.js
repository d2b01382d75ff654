// One certificate: what it is, its validity, downloads, revoke / hold / unhold / renew, edits,
// the serials it has had and (admins) its audit entries.
import { get, post, patch, download, cert_path, qs, api_error } from './api.js';
import { h, clear, field, select, set_field_error, flash, fmt_time, serial_hex, status_badge, confirm_dialog, fill } from './ui.js';

// RFC 5280 5.3.1 reason codes a revocation may carry (certificateHold is the separate "Hold").
const reasons = [['unspecified', 'unspecified'], ['keyCompromise', 'keyCompromise'],
  ['affiliationChanged', 'affiliationChanged'], ['superseded', 'superseded'],
  ['cessationOfOperation', 'cessationOfOperation'], ['privilegeWithdrawn', 'privilegeWithdrawn']];

function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

function time_left(c) {
  const start = new Date(c.not_before).getTime();
  const end = new Date(c.expires_at).getTime();
  const now = Date.now();
  const frac = Math.min(1, Math.max(0, (end - now) / Math.max(1, end - start)));
  const days = Math.max(0, Math.floor((end - now) / 86400000));
  const span = h('span');
  span.style.width = `${(frac * 100).toFixed(1)}%`;
  return h('div', {},
    h('div', { class: 'bar', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(frac * 100),
      'aria-label': 'Validity left' }, span),
    h('div', { class: 'muted' }, end > now ? `${days} days left (${Math.round(frac * 100)}% of its validity)` : 'expired'));
}

export async function render(main, ctx) {
  const id = ctx.params[0];
  const c = await get(cert_path(id));
  document.title = `${c.identifier} · CertMate`;
  const op = ctx.can('operator');
  const sans = c.subject_alt_names || {};
  const san_list = [...(sans.dns || []).map((x) => `DNS:${x}`), ...(sans.ip || []).map((x) => `IP:${x}`),
    ...(sans.email || []).map((x) => `email:${x}`), ...(sans.uri || []).map((x) => `URI:${x}`)];
  const revoked = c.status === 'revoked';
  const busy = async (btn, f) => {
    btn.disabled = true;
    try { await f(); } catch (e) { flash(e.message, 'error'); } finally { btn.disabled = false; }
  };

  // Downloads.
  const dl = (label, path, name, idattr) => {
    const b = h('button', { type: 'button', class: 'secondary', id: idattr }, label);
    b.addEventListener('click', () => busy(b, () => download(`${cert_path(id)}/${path}`, name)));
    return b;
  };
  const downloads = h('div', { class: 'actions' },
    dl('Certificate (PEM)', 'certificate', `${id}.crt`, 'dl-cert'),
    dl('Chain (PEM)', 'chain', `${id}-chain.pem`, 'dl-chain'),
    op && c.has_private_key ? dl('Private key', 'private-key', `${id}.key`, 'dl-key') : null);
  let p12 = null;
  if (op && c.has_private_key) {
    const pw = h('input', { type: 'password', id: 'p12-password', autocomplete: 'new-password' });
    const b = h('button', { type: 'button', class: 'secondary', id: 'dl-p12' }, 'PKCS#12');
    b.addEventListener('click', () => busy(b, async () => {
      set_field_error(pw, '');
      try {
        await download(`${cert_path(id)}/pkcs12`, `${id}.p12`, { method: 'POST', body: { password: pw.value } });
      } catch (e) {
        if (e instanceof api_error && e.field === 'password') set_field_error(pw, e.message);
        else throw e;
      }
    }));
    p12 = h('div', { class: 'actions' }, field('PKCS#12 password', pw), b);
  }

  // Revocation state changes.
  const actions = h('div', { class: 'actions' });
  if (op && !revoked && c.status !== 'expired') {
    const reason = select(reasons, 'unspecified', { id: 'revoke-reason' });
    const rb = h('button', { type: 'button', class: 'danger', id: 'revoke' }, 'Revoke…');
    rb.addEventListener('click', async () => {
      const ok = await confirm_dialog('Revoke this certificate?',
        h('p', {}, 'Revoke ', h('strong', {}, c.identifier), ` (CN ${c.common_name}) with reason ${reason.value}? ` +
          'This cannot be undone.'), `Revoke ${c.identifier}`);
      if (ok) busy(rb, async () => { await post(`${cert_path(id)}/revoke`, { reason: reason.value }); flash(`${c.identifier} revoked.`); await render(main, ctx); });
    });
    actions.append(h('div', {}, h('label', { for: reason.id }, 'Revocation reason (RFC 5280)'), h('div', { class: 'actions' }, reason, rb)));
    if (c.status !== 'on_hold') {
      const hb = h('button', { type: 'button', class: 'secondary', id: 'hold' }, 'Hold');
      hb.addEventListener('click', async () => {
        const ok = await confirm_dialog('Put this certificate on hold?',
          h('p', {}, 'Suspend ', h('strong', {}, c.identifier), ' (reason certificateHold)? It can be released later.'), 'Hold', false);
        if (ok) busy(hb, async () => { await post(`${cert_path(id)}/revoke`, { reason: 'certificateHold' }); flash(`${c.identifier} is on hold.`); await render(main, ctx); });
      });
      actions.append(hb);
    }
  }
  if (op && c.status === 'on_hold') {
    const ub = h('button', { type: 'button', id: 'unhold' }, 'Release hold');
    ub.addEventListener('click', () => busy(ub, async () => { await post(`${cert_path(id)}/unhold`); flash(`${c.identifier} released.`); await render(main, ctx); }));
    actions.append(ub);
  }
  if (op && !revoked && c.status !== 'on_hold') {
    const nb = h('button', { type: 'button', class: 'secondary', id: 'renew' }, 'Renew');
    nb.addEventListener('click', async () => {
      const ok = await confirm_dialog('Renew this certificate?', h('p', {}, 'Issue a new serial for ', h('strong', {}, c.identifier), '?'), 'Renew', false);
      if (ok) busy(nb, async () => { await post(`${cert_path(id)}/renew`); flash(`${c.identifier} renewed.`); await render(main, ctx); });
    });
    actions.append(nb);
  }

  // Edits: notes, renewal settings, role.
  let edit = null;
  if (op) {
    const notes = h('textarea', { id: 'edit-notes', maxlength: 4096 }, c.notes || '');
    const ren = h('input', { type: 'checkbox', id: 'edit-renewal', checked: c.renewal?.renewal_enabled });
    const thr = h('input', { type: 'number', id: 'edit-threshold', min: 1, value: c.renewal?.renewal_threshold_days });
    const role = select([['', 'none'], ['viewer', 'viewer'], ['operator', 'operator'], ['admin', 'admin']], c.api_role || '', { id: 'edit-role' });
    const save = h('button', { type: 'submit', id: 'edit-save' }, 'Save changes');
    const controls = { notes, renewal_enabled: ren, renewal_threshold_days: thr, api_role: role };
    edit = h('form', { class: 'panel', novalidate: true }, h('h2', {}, 'Edit'),
      field('Notes', notes),
      h('label', { class: 'inline' }, ren, 'Renew automatically'),
      h('div', { class: 'form-grid' }, field('Renew when this many days are left', thr), field('API role of this certificate', role)),
      save);
    edit.addEventListener('submit', (ev) => {
      ev.preventDefault();
      for (const ctl of Object.values(controls)) set_field_error(ctl, '');
      busy(save, async () => {
        try {
          await patch(cert_path(id), { notes: notes.value, renewal_enabled: ren.checked,
            renewal_threshold_days: Number(thr.value), api_role: role.value || null });
        } catch (e) {
          if (e instanceof api_error && controls[e.field]) { set_field_error(controls[e.field], e.message); return; }
          throw e;
        }
        flash('Saved.');
        await render(main, ctx);
      });
    });
  }

  const history = (c.history || []).length
    ? h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, h('tr', {}, ['Serial (hex)', 'Valid from', 'Until', 'Superseded', 'Revoked'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, c.history.map((x) => h('tr', {}, h('td', { class: 'mono' }, serial_hex(x.serial_number)), h('td', {}, fmt_time(x.not_before)),
        h('td', {}, fmt_time(x.expires_at)), h('td', {}, fmt_time(x.superseded_at)), h('td', {}, x.revoked ? x.reason || 'yes' : 'no'))))))
    : h('p', { class: 'muted' }, 'No earlier serials.');

  const audit = h('div', { id: 'cert-audit' });
  if (ctx.can('admin')) {
    audit.append(h('p', { class: 'muted' }, 'Loading…'));
    get(`/api/audit${qs({ resource_id: c.identifier, limit: 100 })}`).then((r) => {
      fill(audit, r.entries.length ? h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Time', 'Operation', 'Status', 'User'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, r.entries.map((e) => h('tr', {}, h('td', {}, fmt_time(e.timestamp)), h('td', {}, e.operation), h('td', {}, e.status), h('td', {}, e.user))))))
        : h('p', { class: 'muted' }, 'No audit entries.'));
    }).catch((e) => fill(audit, h('p', { class: 'error' }, e.message)));
  } else {
    audit.append(h('p', { class: 'muted' }, 'The audit log is shown to admins.'));
  }

  fill(main, 
    h('p', {}, h('a', { href: '/client-certificates' }, '← Certificates')),
    h('div', { class: 'actions' }, h('h1', { id: 'cert-title' }, c.identifier), h('span', { id: 'cert-status' }, status_badge(c.status))),
    h('section', { class: 'panel', 'aria-labelledby': 'h-subject' }, h('h2', { id: 'h-subject' }, 'Certificate'),
      kv([['Common name', c.common_name], c.email && ['E-mail', c.email], c.organization && ['Organization', c.organization],
        c.organizational_unit && ['Unit', c.organizational_unit], c.country && ['Country', c.country],
        c.state && ['State', c.state], c.locality && ['Locality', c.locality],
        ['Subject alternative names', san_list.length ? san_list.join(', ') : '—'],
        ['Serial (hex)', h('span', { class: 'mono', id: 'serial-hex' }, serial_hex(c.serial_number))],
        ['Serial (decimal)', h('span', { class: 'mono', id: 'serial-dec' }, c.serial_number)],
        ['SHA-256 fingerprint', h('span', { class: 'mono' }, c.fingerprint_sha256)],
        ['Key', c.key_type], ['Usage', c.cert_usage], ['Extended key usage', (c.extended_key_usage || []).join(', ')],
        ['API role', c.api_role || 'none'], ['Created', fmt_time(c.created_at)],
        ['Valid from', fmt_time(c.not_before)], ['Valid until', fmt_time(c.expires_at)], ['Time left', time_left(c)],
        ['Status', status_badge(c.status)],
        revoked || c.status === 'on_hold' ? ['Revoked', `${fmt_time(c.revocation?.revoked_at)} (${c.revocation?.reason || 'unspecified'})`] : null,
        ['Renewal', c.renewal?.renewal_enabled ? `automatic, ${c.renewal.renewal_threshold_days} days before expiry` : 'manual'],
        ['Last renewed', fmt_time(c.renewal?.last_renewed_at)], ['Notes', c.notes || '—']])),
    h('section', { class: 'panel', 'aria-labelledby': 'h-dl' }, h('h2', { id: 'h-dl' }, 'Downloads'), downloads, p12),
    op && actions.childNodes.length ? h('section', { class: 'panel', 'aria-labelledby': 'h-act' }, h('h2', { id: 'h-act' }, 'Actions'), actions) : null,
    edit,
    h('section', { class: 'panel', 'aria-labelledby': 'h-hist' }, h('h2', { id: 'h-hist' }, 'Earlier serials'), history),
    h('section', { class: 'panel', 'aria-labelledby': 'h-audit' }, h('h2', { id: 'h-audit' }, 'Audit entries'), audit));
}
