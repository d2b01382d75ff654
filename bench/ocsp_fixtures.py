#!/usr/bin/env python3
"""Fixtures for bench/ocsp.sh (Python standard library only).

  ocsp_fixtures.py prepare DATA_DIR TEMPLATE_DER OUT_DIR
      Reads every certificate's metadata.json under DATA_DIR/certs/client/ and writes to OUT_DIR:
        serials.txt  the decimal serials, one a line
        index.txt    an `openssl ca`/`openssl ocsp -index` database (status V, expiry, hex serial)
        reqs.hex     one DER OCSPRequest a line (hex): the CertID of TEMPLATE_DER (one made by
                     `openssl ocsp -issuer ca.crt -serial 1 -no_nonce -reqout`) with each serial
  ocsp_fixtures.py collect URL REQS_HEX OUT_B64
      POSTs every request once over one keep-alive connection (this fills the server's cache of
      signed answers), checks each answer is a successful OCSP response (RFC 6960 4.2.1,
      responseStatus 0), and writes each as one base64 line: the file `cfssl ocspserve -responses`
      reads (whitespace-separated base64 DER responses, keyed by the serial inside).
"""
import base64
import glob
import http.client
import json
import os
import sys
import urllib.parse
from datetime import datetime, timezone


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


def read_tlv(buf, pos):
    """(tag, start of the value, end of the value) of the element at pos."""
    tag = buf[pos]
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    return tag, pos, pos + n


def children(buf, start, end):
    out = []
    while start < end:
        tag, vs, ve = read_tlv(buf, start)
        out.append((tag, start, vs, ve))
        start = ve
    return out


def certid_prefix(template):
    """hashAlgorithm, issuerNameHash, issuerKeyHash of the template's single CertID, as DER."""
    _, s, e = read_tlv(template, 0)            # OCSPRequest
    _, s, e = read_tlv(template, s)            # TBSRequest
    tbs = children(template, s, e)
    req_list = [c for c in tbs if c[0] == 0x30][0]   # requestList (version and name are tagged)
    _, _, s, e = req_list
    _, s, e = read_tlv(template, s)            # Request
    _, s, e = read_tlv(template, s)            # CertID
    parts = children(template, s, e)
    assert len(parts) == 4 and parts[3][0] == 0x02, "template is not one CertID"
    return template[parts[0][1]:parts[2][3]]


def der_integer(v):
    b = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")   # a leading 0 keeps it positive
    return tlv(0x02, b)


def request_for(prefix, serial):
    certid = tlv(0x30, prefix + der_integer(serial))
    return tlv(0x30, tlv(0x30, tlv(0x30, tlv(0x30, certid))))


def prepare(data_dir, template_path, out_dir):
    prefix = certid_prefix(open(template_path, "rb").read())
    rows = []
    for path in glob.glob(os.path.join(data_dir, "certs", "client", "*", "*", "metadata.json")):
        with open(path) as f:
            m = json.load(f)
        if m.get("revocation", {}).get("revoked"):
            continue
        exp = datetime.strptime(m["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        rows.append((int(m["serial_number"]), exp, m.get("common_name", "")))
    rows.sort()
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "serials.txt"), "w") as s, \
         open(os.path.join(out_dir, "index.txt"), "w") as idx, \
         open(os.path.join(out_dir, "reqs.hex"), "w") as reqs:
        for serial, exp, cn in rows:
            hexs = "%X" % serial
            if len(hexs) % 2:
                hexs = "0" + hexs      # openssl ocsp looks serials up as BN_bn2hex prints them
            s.write("%d\n" % serial)
            idx.write("V\t%s\t\t%s\tunknown\t/CN=%s\n" % (exp.strftime("%y%m%d%H%M%SZ"), hexs, cn))
            reqs.write(request_for(prefix, serial).hex() + "\n")
    print(len(rows))


def successful(body):
    if len(body) < 100 or body[0] != 0x30:
        return False
    _, vs, _ = read_tlv(body, 0)
    return body[vs:vs + 3] == b"\x0a\x01\x00"


def collect(url, reqs_path, out_path):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    n = 0
    with open(reqs_path) as reqs, open(out_path, "w") as out:
        for line in reqs:
            der = bytes.fromhex(line.strip())
            conn.request("POST", u.path or "/", body=der, headers={"Content-Type": "application/ocsp-request"})
            r = conn.getresponse()
            body = r.read()
            if r.status != 200 or not successful(body):
                sys.exit("request %d: HTTP %d, not a successful OCSP response" % (n + 1, r.status))
            out.write(base64.b64encode(body).decode() + "\n")
            n += 1
    print(n)


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "prepare" and len(sys.argv) == 5:
        prepare(*sys.argv[2:])
    elif cmd == "collect" and len(sys.argv) == 5:
        collect(*sys.argv[2:])
    else:
        sys.exit(__doc__)
