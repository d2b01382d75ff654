// Batch operations (docs/api.md "Batch jobs"): a CSV of certificates to create, or a revocation of many by
// identifiers or by filter, each run as a job whose progress is polled from GET /api/jobs/{id}.
// Shown only when this server's OpenAPI document has POST /api/client-certs/batch.
import { request, get, post, qs, api_error, download } from './api.js';
import { h, clear, field, select, flash, num, list_of, confirm_dialog, fill, add } from './ui.js';

// The CSV columns (issue 12): the create fields that are scalars, `dns`/`ip`/`email_san` lists
// separated by ';', and `csr` as PEM in a quoted cell.
const template = 'identifier,common_name,email,organization,organizational_unit,country,cert_usage,key_type,' +
  'validity_days,api_role,notes,renewal_enabled,renewal_threshold_days,dns,ip,email_san,uri,csr\r\n' +
  'laptop-0001,alice.example,alice@example.org,Example Org,IT,DE,vpn,ec-p256,365,,"first batch, row 1",true,30,' +
  'alice.example;alt.example,,,,\r\n';

const finished = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);
const reasons = [['unspecified', 'unspecified'], ['keyCompromise', 'keyCompromise'], ['affiliationChanged', 'affiliationChanged'],
  ['superseded', 'superseded'], ['cessationOfOperation', 'cessationOfOperation'], ['privilegeWithdrawn', 'privilegeWithdrawn']];

let available = null;
// Whether the server has the batch API (its OpenAPI document lists it).
export async function batch_available() {
  if (available === null) {
    try {
      const doc = await get('/api/openapi.json');
      available = !!(doc.paths && doc.paths['/api/client-certs/batch']);
    } catch {
      available = false;
    }
  }
  return available;
}

function errors_table(errors) {
  if (!errors || !errors.length) return null;
  return h('div', { class: 'table-wrap' }, h('table', { id: 'job-errors' },
    h('thead', {}, h('tr', {}, ['Row', 'Field', 'Message'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, errors.map((e) => h('tr', {}, h('td', {}, String(e.row ?? '')), h('td', {}, e.field || ''), h('td', {}, e.message || ''))))));
}

// Polls a job until it finishes, drawing its progress into `box` (docs/api.md "Batch jobs":
// done = succeeded + failed, of total).
async function follow(job, box) {
  const bar = h('progress', { id: 'job-progress', max: 100, value: 0, class: 'progress', 'aria-label': 'Job progress' });
  const pct = h('span', { id: 'job-percent' }, '0%');
  const line = h('p', { id: 'job-line', 'aria-live': 'polite' });
  const summary = h('div', { id: 'job-summary' });
  fill(box, h('h2', {}, `Job ${job.id} (${job.kind === 'revoke' ? 'revoke' : 'create'})`), h('div', { class: 'actions' }, bar, pct), line, summary);
  for (;;) {
    const total = job.total || 0;
    const p = total ? Math.floor((100 * (job.done || 0)) / total) : (finished.has(job.state) ? 100 : 0);
    bar.value = p;
    pct.textContent = `${p}%`;
    line.textContent = `${job.state}: ${num(job.done)} of ${num(total)} rows done (${num(job.failed)} failed)`;
    if (finished.has(job.state)) break;
    await new Promise((r) => setTimeout(r, 500));
    job = await get(`/api/jobs/${encodeURIComponent(job.id)}`);
  }
  const ok = job.succeeded ?? (job.done || 0) - (job.failed || 0);
  const verb = job.kind === 'revoke' ? 'revoked' : 'created';
  const archive = job.kind !== 'revoke' && ok > 0 && job.links && job.links.archive
    ? h('button', { type: 'button', class: 'secondary', id: 'job-archive' }, 'Download the certificates (.tar.gz)') : null;
  if (archive) archive.addEventListener('click', () => download(job.links.archive, `${job.id}.tar.gz`).catch((e) => flash(e.message, 'error')));
  fill(summary,
    h('p', { class: job.state === 'succeeded' && !job.failed ? 'st-active' : 'error' },
      `Finished (${job.state}): ${num(ok)} ${verb}, ${num(job.failed)} failed.`),
    job.errors_total > (job.errors || []).length ? h('p', { class: 'muted' }, `The first ${num(job.errors.length)} of ${num(job.errors_total)} row errors:`) : null,
    errors_table(job.errors), archive);
}

export async function render(main, ctx) {
  document.title = 'Batch · CertMate';
  if (!ctx.can('operator')) {
    fill(main, h('h1', {}, 'Batch'), h('p', {}, 'Batch operations need the operator role.'));
    return;
  }
  if (!(await batch_available())) {
    fill(main, h('h1', {}, 'Batch'), h('p', {}, 'This server has no batch API (POST /api/client-certs/batch) yet.'));
    return;
  }
  const job_box = h('section', { class: 'panel', id: 'job', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'No job started from this page yet.'));

  // Create from CSV.
  const file = h('input', { type: 'file', id: 'batch-file', accept: '.csv,text/csv' });
  const partial = h('input', { type: 'checkbox', id: 'batch-partial' });
  const csv_err = h('div', { id: 'batch-error', role: 'alert' });
  const tpl = h('button', { type: 'button', class: 'secondary', id: 'batch-template' }, 'Download the CSV template');
  tpl.addEventListener('click', () => {
    const a = h('a', { href: URL.createObjectURL(new Blob([template], { type: 'text/csv' })), download: 'certmate-batch-template.csv' });
    document.body.append(a);
    a.click();
    a.remove();
  });
  const upload = h('button', { type: 'submit', id: 'batch-submit' }, 'Create from CSV');
  const csv_form = h('form', { class: 'panel', novalidate: true },
    h('h2', {}, 'Create certificates from a CSV file'),
    h('p', { class: 'muted' }, 'One row per certificate; lists (dns, ip, email_san) separated by ";", a CSR as PEM in a quoted cell.'),
    tpl, field('CSV file', file),
    h('label', { class: 'inline' }, partial, 'Create the valid rows even when some are invalid'),
    csv_err, upload);
  csv_form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clear(csv_err);
    if (!file.files.length) { add(csv_err, h('p', { class: 'error' }, 'Choose a CSV file.')); return; }
    upload.disabled = true;
    try {
      const res = await request(`/api/client-certs/batch${partial.checked ? '?partial=true' : ''}`,
        { method: 'POST', body: new Blob([await file.files[0].arrayBuffer()]), headers: { 'Content-Type': 'text/csv' }, raw: true });
      await follow(await res.json(), job_box);
    } catch (e) {
      if (!(e instanceof api_error)) throw e;
      add(csv_err, h('p', { class: 'error' }, `Nothing was created: ${e.message}`), errors_table(e.body && e.body.errors));
      if (e.body && e.body.errors_total > (e.body.errors || []).length)
        add(csv_err, h('p', { class: 'muted' }, `(the first ${num(e.body.errors.length)} of ${num(e.body.errors_total)} errors)`));
    } finally {
      upload.disabled = false;
    }
  });

  // Revoke many.
  const ids = h('textarea', { id: 'revoke-ids', rows: 3, placeholder: 'identifiers, separated by commas or new lines' });
  const by = { usage: select([['', 'any'], ['api-mtls', 'api-mtls'], ['vpn', 'vpn'], ['other', 'other']], '', { id: 'rf-usage' }),
    status: select([['', 'any'], ['active', 'active'], ['expiring', 'expiring'], ['on_hold', 'on hold']], '', { id: 'rf-status' }),
    search: h('input', { id: 'rf-search', type: 'search' }) };
  const reason = select(reasons, 'unspecified', { id: 'rb-reason' });
  const go = h('button', { type: 'submit', class: 'danger', id: 'revoke-many' }, 'Revoke…');
  const rv_form = h('form', { class: 'panel', novalidate: true },
    h('h2', {}, 'Revoke many'),
    field('By identifiers', ids, 'or leave empty and use the filter below'),
    h('div', { class: 'form-grid' }, field('Usage', by.usage), field('Status', by.status), field('Search', by.search)),
    field('Reason (RFC 5280)', reason), go);
  rv_form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const list = list_of(ids.value);
    let body;
    let what;
    if (list.length) {
      body = { identifiers: list, reason: reason.value };
      what = `${list.length} certificate(s): ${list.slice(0, 5).join(', ')}${list.length > 5 ? ', …' : ''}`;
    } else {
      const filter = { usage: by.usage.value, status: by.status.value, search: by.search.value.trim() };
      for (const k of Object.keys(filter)) if (!filter[k]) delete filter[k];
      const n = (await get(`/api/client-certs${qs({ ...filter, limit: 1 })}`)).total;
      body = { filter, reason: reason.value };
      what = `the ${num(n)} certificate(s) matching ${JSON.stringify(filter)}`;
    }
    const ok = await confirm_dialog('Revoke these certificates?', h('p', {}, `Revoke ${what} with reason ${reason.value}? This cannot be undone.`), 'Revoke them');
    if (!ok) return;
    go.disabled = true;
    try {
      await follow(await post('/api/client-certs/batch/revoke', body), job_box);
    } catch (e) {
      flash(e.message, 'error');
    } finally {
      go.disabled = false;
    }
  });

  fill(main, h('h1', {}, 'Batch'), csv_form, rv_form, job_box);
  // From the list's selection: /client-certificates/batch?revoke=id,id,...
  const preset = new URLSearchParams(location.search).get('revoke');
  if (preset) {
    ids.value = list_of(preset).join('\n');
    reason.focus();
  }
}
