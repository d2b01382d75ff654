// Reads a PKCS#10 CSR (RFC 2986) in the browser, to show its subject and SANs before it is sent.
// A small DER reader (X.690): only what a CertificationRequest needs. The server checks it again.

function pem_to_der(pem) {
  const m = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----([\s\S]*?)-----END (NEW )?CERTIFICATE REQUEST-----/.exec(pem);
  if (!m) throw new Error('not a PEM certificate request');
  const bin = atob(m[2].replace(/\s+/g, ''));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// One TLV at `pos`: {tag, start (of content), end, children()}.
function tlv(b, pos) {
  if (pos + 2 > b.length) throw new Error('truncated');
  const tag = b[pos];
  let len = b[pos + 1];
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 4) throw new Error('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[start + i];
    start += n;
  }
  const end = start + len;
  if (end > b.length) throw new Error('truncated');
  return {
    tag, start, end,
    bytes: () => b.subarray(start, end),
    children() {
      const out = [];
      for (let p = start; p < end;) { const c = tlv(b, p); out.push(c); p = c.end; }
      return out;
    },
  };
}

function oid(bytes) {
  const parts = [Math.floor(bytes[0] / 40), bytes[0] % 40];
  let v = 0;
  for (let i = 1; i < bytes.length; i++) {
    v = v * 128 + (bytes[i] & 0x7f);
    if (!(bytes[i] & 0x80)) { parts.push(v); v = 0; }
  }
  return parts.join('.');
}

const text = (bytes) => new TextDecoder().decode(bytes);
const names = { '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.7': 'L', '2.5.4.8': 'ST', '2.5.4.10': 'O', '2.5.4.11': 'OU',
  '1.2.840.113549.1.9.1': 'emailAddress' };

function ip_text(b) {
  if (b.length === 4) return Array.from(b).join('.');
  const groups = [];
  for (let i = 0; i < b.length; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  return groups.join(':');
}

// {subject: [[name, value]...], sans: ['DNS:x', ...]}; throws on what it cannot read.
export function read_csr(pem) {
  const der = pem_to_der(pem);
  const req = tlv(der, 0);
  const info = req.children()[0];
  const [, subject, , attrs] = info.children();
  const out = { subject: [], sans: [] };
  for (const rdn of subject.children())
    for (const atv of rdn.children()) {
      const [o, v] = atv.children();
      const id = oid(o.bytes());
      out.subject.push([names[id] || id, text(v.bytes())]);
    }
  if (attrs && attrs.tag === 0xa0) {
    for (const attr of attrs.children()) {
      const [o, set] = attr.children();
      if (oid(o.bytes()) !== '1.2.840.113549.1.9.14') continue; // extensionRequest
      for (const exts of set.children())
        for (const ext of exts.children()) {
          const parts = ext.children();
          if (oid(parts[0].bytes()) !== '2.5.29.17') continue; // subjectAltName
          const value = parts[parts.length - 1];
          const names_seq = tlv(value.bytes(), 0);
          for (const gn of names_seq.children()) {
            const t = gn.tag & 0x1f;
            if (t === 2) out.sans.push(`DNS:${text(gn.bytes())}`);
            else if (t === 1) out.sans.push(`email:${text(gn.bytes())}`);
            else if (t === 6) out.sans.push(`URI:${text(gn.bytes())}`);
            else if (t === 7) out.sans.push(`IP:${ip_text(gn.bytes())}`);
          }
        }
    }
  }
  return out;
}
