// Create a certificate: a key generated here (type picker) or an external CSR (its subject and
// SANs shown before submit). The API's 400s are shown at the field they name.
import { post, api_error } from './api.js';
import { h, clear, field, select, set_field_error, list_of, flash, fill } from './ui.js';
import { read_csr } from './csr.js';

const key_types = [['ec-p256', 'EC P-256'], ['ec-p384', 'EC P-384'], ['ed25519', 'Ed25519'], ['rsa2048', 'RSA 2048'],
  ['rsa3072', 'RSA 3072'], ['rsa4096', 'RSA 4096']];

export async function render(main, ctx) {
  document.title = 'New certificate · CertMate';
  if (!ctx.can('operator')) {
    fill(main, h('h1', {}, 'New certificate'), h('p', {}, 'Creating certificates needs the operator role.'));
    return;
  }
  const mode_gen = h('input', { type: 'radio', name: 'mode', value: 'generate', id: 'mode-generate', checked: true });
  const mode_csr = h('input', { type: 'radio', name: 'mode', value: 'csr', id: 'mode-csr' });
  const c = {
    key_type: select(key_types, 'ec-p256', { id: 'key-type' }),
    csr: h('textarea', { id: 'csr', rows: 8, placeholder: '-----BEGIN CERTIFICATE REQUEST-----', spellcheck: 'false' }),
    identifier: h('input', { id: 'identifier', placeholder: 'generated when empty' }),
    common_name: h('input', { id: 'common-name' }),
    email: h('input', { id: 'email', type: 'email' }),
    organization: h('input', { id: 'organization' }),
    organizational_unit: h('input', { id: 'ou' }),
    country: h('input', { id: 'country', maxlength: 2 }),
    dns: h('textarea', { id: 'san-dns', rows: 2 }),
    ip: h('textarea', { id: 'san-ip', rows: 2 }),
    san_email: h('textarea', { id: 'san-email', rows: 2 }),
    uri: h('textarea', { id: 'san-uri', rows: 2 }),
    validity_days: h('input', { id: 'validity', type: 'number', min: 1, placeholder: 'server default' }),
    cert_usage: select([['api-mtls', 'api-mtls'], ['vpn', 'vpn'], ['other', 'other']], 'api-mtls', { id: 'usage' }),
    api_role: select([['', 'none'], ['viewer', 'viewer'], ['operator', 'operator'], ['admin', 'admin']], '', { id: 'role' }),
    notes: h('textarea', { id: 'notes', rows: 2, maxlength: 4096 }),
    renewal_enabled: h('input', { type: 'checkbox', id: 'renewal', checked: true }),
    renewal_threshold_days: h('input', { id: 'threshold', type: 'number', min: 1, placeholder: 'server default' }),
  };
  const file = h('input', { type: 'file', id: 'csr-file', accept: '.csr,.pem,.req,text/plain' });
  const preview = h('div', { id: 'csr-preview', 'aria-live': 'polite' });
  const form_error = h('p', { class: 'form-error', role: 'alert', id: 'form-error' });
  const submit = h('button', { type: 'submit', id: 'create-submit' }, 'Create certificate');

  const gen_box = h('div', { id: 'gen-box' }, field('Key type', c.key_type));
  const csr_box = h('div', { id: 'csr-box', hidden: true },
    field('CSR (PEM)', c.csr, 'The subject and SANs of the CSR are used; the fields below add to or override them as the API allows.'),
    field('…or upload a CSR file', file), preview);

  const show_csr = () => {
    clear(preview);
    const pem = c.csr.value.trim();
    if (!pem) return;
    try {
      const r = read_csr(pem);
      preview.append(h('h3', {}, 'This CSR asks for'), h('dl', { class: 'kv' },
        h('dt', {}, 'Subject'), h('dd', { id: 'csr-subject' }, r.subject.map(([k, v]) => `${k}=${v}`).join(', ') || '—'),
        h('dt', {}, 'SANs'), h('dd', { id: 'csr-sans' }, r.sans.join(', ') || '—')));
    } catch (e) {
      preview.append(h('p', { class: 'muted' }, `This page could not read the CSR (${e.message}); the server will check it.`));
    }
  };
  c.csr.addEventListener('input', show_csr);
  file.addEventListener('change', async () => {
    if (!file.files.length) return;
    c.csr.value = await file.files[0].text();
    show_csr();
  });
  const set_mode = () => { gen_box.hidden = !mode_gen.checked; csr_box.hidden = mode_gen.checked; };
  mode_gen.addEventListener('change', set_mode);
  mode_csr.addEventListener('change', set_mode);

  const form = h('form', { class: 'panel', novalidate: true, id: 'create-form' },
    h('fieldset', {}, h('legend', {}, 'Key'),
      h('label', { class: 'inline' }, mode_gen, 'Generate a key on the server'),
      h('label', { class: 'inline' }, mode_csr, 'Use a CSR (the key stays with you)')),
    gen_box, csr_box,
    h('h2', {}, 'Subject'),
    h('div', { class: 'form-grid' }, field('Common name', c.common_name), field('Identifier', c.identifier),
      field('E-mail', c.email), field('Organization', c.organization), field('Organizational unit', c.organizational_unit),
      field('Country (2 letters)', c.country)),
    h('h2', {}, 'Subject alternative names'),
    h('div', { class: 'form-grid' }, field('DNS names', c.dns, 'comma or new line separated'), field('IP addresses', c.ip),
      field('E-mail addresses', c.san_email), field('URIs', c.uri)),
    h('h2', {}, 'Use'),
    h('div', { class: 'form-grid' }, field('Validity (days)', c.validity_days), field('Usage', c.cert_usage),
      field('API role', c.api_role), field('Renew when this many days are left', c.renewal_threshold_days)),
    h('label', { class: 'inline' }, c.renewal_enabled, 'Renew automatically'),
    field('Notes', c.notes),
    form_error, submit);

  // API field names -> controls (field names may carry a path, e.g. subject_alt_names.dns[0]).
  const control_of = (f) => {
    if (!f) return null;
    if (f === 'csr' || f === 'csr_pem' || f === 'generate_key') return mode_csr.checked ? c.csr : c.key_type;
    if (f === 'days_valid') return c.validity_days;
    if (f.startsWith('subject_alt_names')) {
      const k = (/subject_alt_names\.(\w+)/.exec(f) || [])[1];
      return { dns: c.dns, ip: c.ip, email: c.san_email, uri: c.uri }[k] || c.dns;
    }
    return c[f] || null;
  };

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    form_error.textContent = '';
    for (const ctl of Object.values(c)) set_field_error(ctl, '');
    const body = { cert_usage: c.cert_usage.value, renewal_enabled: c.renewal_enabled.checked };
    if (mode_gen.checked) { body.generate_key = true; body.key_type = c.key_type.value; } else body.csr = c.csr.value;
    for (const k of ['identifier', 'common_name', 'email', 'organization', 'organizational_unit', 'country', 'notes'])
      if (c[k].value.trim()) body[k] = c[k].value.trim();
    if (c.validity_days.value) body.validity_days = Number(c.validity_days.value);
    if (c.renewal_threshold_days.value) body.renewal_threshold_days = Number(c.renewal_threshold_days.value);
    if (c.api_role.value) body.api_role = c.api_role.value;
    const sans = { dns: list_of(c.dns.value), ip: list_of(c.ip.value), email: list_of(c.san_email.value), uri: list_of(c.uri.value) };
    if (Object.values(sans).some((v) => v.length)) body.subject_alt_names = sans;
    submit.disabled = true;
    try {
      const made = await post('/api/client-certs', body);
      flash(`Created ${made.identifier}.`);
      ctx.navigate(`/client-certificates/${encodeURIComponent(made.identifier)}`);
    } catch (e) {
      if (!(e instanceof api_error)) throw e;
      const ctl = control_of(e.field);
      if (ctl) { set_field_error(ctl, e.message); ctl.focus(); } else form_error.textContent = e.field ? `${e.field}: ${e.message}` : e.message;
    } finally {
      submit.disabled = false;
    }
  });

  fill(main, h('p', {}, h('a', { href: '/client-certificates' }, '← Certificates')), h('h1', {}, 'New certificate'), form);
}
