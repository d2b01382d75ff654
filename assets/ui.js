// DOM helpers and formatting shared by the pages. No innerHTML with data: text goes in as text.

// h('div', {class: 'x', onclick: f}, child, ...): an element; strings become text nodes.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// An SVG element with attributes.
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

export function clear(el) { while (el.firstChild) el.firstChild.remove(); return el; }

// Replaces el's children (null, undefined and false are skipped, as in h()).
export function fill(el, ...children) { clear(el); append(el, children); return el; }

// Adds children to el (null, undefined and false are skipped, as in h()).
export function add(el, ...children) { append(el, children); return el; }

let uid = 0;
export const new_id = (p = 'f') => `${p}-${++uid}`;

// A labelled form control: {label, control, hint}; the error slot sits under it.
export function field(label, control, hint) {
  if (!control.id) control.id = new_id();
  const err = h('div', { class: 'field-error', id: `${control.id}-err`, hidden: true });
  const hint_el = hint ? h('div', { class: 'muted', id: `${control.id}-hint` }, hint) : null;
  if (hint_el) control.setAttribute('aria-describedby', hint_el.id);
  const wrap = h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hint_el, err);
  return wrap;
}

// Shows `message` at a control made by field() (aria-invalid, described by the error).
export function set_field_error(control, message) {
  const err = document.getElementById(`${control.id}-err`);
  if (!err) return;
  err.textContent = message || '';
  err.hidden = !message;
  if (message) {
    control.setAttribute('aria-invalid', 'true');
    const ids = (control.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
    if (!ids.includes(err.id)) ids.push(err.id);
    control.setAttribute('aria-describedby', ids.join(' '));
  } else {
    control.removeAttribute('aria-invalid');
  }
}

export function select(options, value, attrs = {}) {
  return h('select', attrs, options.map(([v, t]) => h('option', { value: v, selected: v === value }, t)));
}

// The status line under the header (polite live region).
export function flash(message, kind = '') {
  const s = document.getElementById('status');
  clear(s);
  if (message) s.append(h('p', { class: kind }, message));
}

const nf = new Intl.NumberFormat('en');
export const num = (n) => nf.format(n ?? 0);

export function fmt_time(s) {
  if (!s) return '—';
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return s;
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace(/:\d\dZ$/, ' UTC');
}

export const fmt_date = (s) => (s ? new Date(s).toISOString().slice(0, 10) : '—');

// A decimal serial as colon-separated upper-case hex (as `openssl x509 -serial` shows it, with colons).
export function serial_hex(dec) {
  try {
    let x = BigInt(dec).toString(16).toUpperCase();
    if (x.length % 2) x = `0${x}`;
    return x.match(/../g).join(':');
  } catch {
    return '';
  }
}

export function status_badge(status) {
  return h('span', { class: `badge st-${status}` }, status === 'on_hold' ? 'on hold' : status);
}

export const rank = { viewer: 0, operator: 1, admin: 2 };

// A modal dialog; resolves true when the confirming button is used.
export function confirm_dialog(title, body, confirm_text, danger = true) {
  return new Promise((resolve) => {
    const ok = h('button', { type: 'button', class: danger ? 'danger' : '' }, confirm_text);
    const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
    const d = h('dialog', { 'aria-labelledby': 'dlg-title' }, h('h2', { id: 'dlg-title' }, title), body,
      h('div', { class: 'actions' }, ok, cancel));
    const done = (v) => { d.close(); d.remove(); resolve(v); };
    ok.addEventListener('click', () => done(true));
    cancel.addEventListener('click', () => done(false));
    d.addEventListener('cancel', (e) => { e.preventDefault(); done(false); });
    document.body.append(d);
    d.showModal();
    cancel.focus();
  });
}

// Splits a textarea's text on commas, spaces and new lines.
export const list_of = (s) => s.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
