// Commands that need no API: `inspect FILE` (certificate, CSR, CRL, OCSP response), and the
// relying party's checks `ocsp check CERT` (RFC 6960) and `crl check CERT` (RFC 5280 6.3),
// which use only what the certificate and the public endpoints say (docs/cli.md).
#include "app/client_common.hpp"

#include "core/keys.hpp"

#include <boost/json.hpp>
#include <boost/program_options/value_semantic.hpp>

#include <openssl/pem.h>

#include <iostream>

namespace certmate::app {

namespace po = boost::program_options;
namespace json = boost::json;

namespace {

// A value for a human summary: the text, or why it could not be read.
std::string shown(result<std::string> r) { return r ? std::move(*r) : "(unreadable: " + r.error().message + ")"; }

// One line of a summary: the text for people, and the value --json gives (the text unless said).
struct entry {
    std::string key, text;
    json::value value;
    entry(std::string k, std::string t) : key(std::move(k)), text(std::move(t)), value(json::string(text)) {}
    entry(std::string k, std::string t, json::value v) : key(std::move(k)), text(std::move(t)), value(std::move(v)) {}
};
using kv = std::vector<entry>;

std::string name_text(const X509_NAME* n) {
    auto b = ossl::bio(BIO_new(BIO_s_mem()));
    // The form `openssl x509 -text` prints ("CN = alice, O = Example"), UTF-8 kept.
    X509_NAME_print_ex(b.get(), n, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
    return ossl::bio_to_string(b.get());
}

std::string hex_serial(const ASN1_INTEGER* s) {
    auto bn = ossl::bignum(ASN1_INTEGER_to_BN(s, nullptr));
    if (!bn) return {};
    auto hex = ossl::openssl_string(BN_bn2hex(bn.get()));
    return hex ? std::string(hex.get()) : std::string();
}

std::string serial_text(const ASN1_INTEGER* s) { return shown(serial_to_decimal(s)) + " (hex " + hex_serial(s) + ")"; }

std::string time_text(const ASN1_TIME* t) {
    if (!t) return "-";
    const auto tp = from_asn1_time(t);
    return format_time(tp) + " (" + relative_time(tp, std::chrono::system_clock::now()) + ")";
}

// A time: RFC 3339 with the relative form for people, RFC 3339 (or null) for --json.
entry time_entry(std::string key, const ASN1_TIME* t) {
    return {std::move(key), time_text(t), t ? json::value(json::string(format_time(from_asn1_time(t)))) : nullptr};
}

// A serial: decimal and hex for people; {"decimal","hex"} for --json.
entry serial_entry(std::string key, const ASN1_INTEGER* s) {
    return {std::move(key), serial_text(s),
            json::object{{"decimal", shown(serial_to_decimal(s))}, {"hex", hex_serial(s)}}};
}

std::string algorithm_text(const X509_ALGOR* alg) {
    const ASN1_OBJECT* obj = nullptr;
    X509_ALGOR_get0(&obj, nullptr, nullptr, alg);
    char buf[128];
    OBJ_obj2txt(buf, sizeof buf, obj, 0);
    return buf;
}

// Each extension as `openssl ... -text` prints it: its name, then the value on one line.
void add_extensions(kv& out, const STACK_OF(X509_EXTENSION) * exts) {
    for (int i = 0; i < sk_X509_EXTENSION_num(exts); ++i) {
        X509_EXTENSION* e = sk_X509_EXTENSION_value(exts, i);
        char name[128];
        OBJ_obj2txt(name, sizeof name, X509_EXTENSION_get_object(e), 0);
        auto b = ossl::bio(BIO_new(BIO_s_mem()));
        if (!X509V3_EXT_print(b.get(), e, 0, 0)) ASN1_STRING_print(b.get(), X509_EXTENSION_get_data(e));
        std::string v = ossl::bio_to_string(b.get());
        std::string one_line; // OpenSSL's multi-line values on one line, runs of blanks as one space
        for (char c : v) {
            if (c == '\n' || c == '\t') c = ' ';
            if (c != ' ' || (!one_line.empty() && one_line.back() != ' ')) one_line += c;
        }
        while (!one_line.empty() && one_line.back() == ' ') one_line.pop_back();
        v = std::move(one_line);
        out.emplace_back(std::string(name) + (X509_EXTENSION_get_critical(e) ? " (critical)" : ""), v);
    }
}

void print_kv(const std::string& title, const kv& fields, bool as_json) {
    if (as_json) {
        // keys in snake_case ("X509v3 Key Usage (critical)" -> "x509v3_key_usage_critical"); indented
        // entries (a CRL's revoked certificates) as an array
        auto key_of = [](const std::string& k) {
            std::string out;
            for (unsigned char c : k) {
                if (std::isalnum(c))
                    out += static_cast<char>(std::tolower(c));
                else if (!out.empty() && out.back() != '_')
                    out += '_';
            }
            while (!out.empty() && out.back() == '_') out.pop_back();
            return out;
        };
        json::object o{{"type", title}};
        json::array entries;
        for (const auto& e : fields) {
            if (e.key.rfind("  ", 0) == 0)
                entries.push_back(e.value);
            else
                o[key_of(e.key)] = e.value;
        }
        if (!entries.empty()) o["revoked_certificates"] = std::move(entries);
        print_json(o);
        return;
    }
    std::cout << title << "\n";
    std::size_t w = 0;
    for (const auto& e : fields) w = std::max(w, e.key.size());
    for (const auto& e : fields)
        // the file's text without control characters (a hostile CSR's SAN holding an escape sequence)
        std::cout << "  " << e.key << ":" << std::string(w - e.key.size() + 1, ' ') << terminal_safe(e.text) << "\n";
}

kv describe_cert(X509* c) {
    kv f;
    f.emplace_back("subject", name_text(X509_get_subject_name(c)));
    f.emplace_back("issuer", name_text(X509_get_issuer_name(c)));
    f.push_back(serial_entry("serial", X509_get0_serialNumber(c)));
    f.push_back(time_entry("not before", X509_get0_notBefore(c)));
    f.push_back(time_entry("not after", X509_get0_notAfter(c)));
    f.emplace_back("public key", describe_key(X509_get0_pubkey(c)));
    f.emplace_back("signature", algorithm_text(X509_get0_tbs_sigalg(c)));
    add_extensions(f, X509_get0_extensions(c));
    f.emplace_back("SHA-256 fingerprint", shown(fingerprint_sha256(c)));
    return f;
}

kv describe_csr(X509_REQ* r) {
    kv f;
    f.emplace_back("subject", name_text(X509_REQ_get_subject_name(r)));
    auto key = ossl::pkey(X509_REQ_get_pubkey(r));
    f.emplace_back("public key", key ? describe_key(key.get()) : "-");
    const X509_ALGOR* sig = nullptr;
    X509_REQ_get0_signature(r, nullptr, &sig);
    f.emplace_back("signature", algorithm_text(sig));
    f.emplace_back("self-signature", key && X509_REQ_verify(r, key.get()) == 1 ? "valid" : "INVALID");
    auto exts = ossl::x509_ext_stack(X509_REQ_get_extensions(r));
    if (exts) add_extensions(f, exts.get());
    (void)ossl::drain_errors();
    return f;
}

std::string reason_name(int code) {
    if (code < 0) return "unspecified";
    return std::string(to_string(static_cast<revocation_reason>(code)));
}

// The reasonCode entry extension (RFC 5280 5.3.1); -1 when absent.
int crl_entry_reason(X509_REVOKED* rev) {
    auto e = ossl::asn1_enumerated(
        static_cast<ASN1_ENUMERATED*>(X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, nullptr, nullptr)));
    return e ? static_cast<int>(ASN1_ENUMERATED_get(e.get())) : -1;
}

kv describe_crl(X509_CRL* crl) {
    kv f;
    f.emplace_back("issuer", name_text(X509_CRL_get_issuer(crl)));
    f.push_back(time_entry("this update", X509_CRL_get0_lastUpdate(crl)));
    f.push_back(time_entry("next update", X509_CRL_get0_nextUpdate(crl)));
    const X509_ALGOR* sig = nullptr;
    X509_CRL_get0_signature(crl, nullptr, &sig);
    f.emplace_back("signature", algorithm_text(sig));
    add_extensions(f, X509_CRL_get0_extensions(crl));
    STACK_OF(X509_REVOKED)* revs = X509_CRL_get_REVOKED(crl);
    const int n = revs ? sk_X509_REVOKED_num(revs) : 0;
    f.emplace_back("revoked", std::to_string(n), n);
    for (int i = 0; i < n; ++i) {
        X509_REVOKED* r = sk_X509_REVOKED_value(revs, i);
        const int reason = crl_entry_reason(r);
        const ASN1_INTEGER* serial = X509_REVOKED_get0_serialNumber(r);
        const ASN1_TIME* when = X509_REVOKED_get0_revocationDate(r);
        f.emplace_back("  serial " + hex_serial(serial),
                       shown(serial_to_decimal(serial)) + ", revoked " + time_text(when) +
                           (reason >= 0 ? ", reason " + reason_name(reason) : ""),
                       json::object{{"serial", shown(serial_to_decimal(serial))},
                                    {"serial_hex", hex_serial(serial)},
                                    {"revoked_at", format_time(from_asn1_time(when))},
                                    {"reason", reason_name(reason)}});
    }
    return f;
}

std::string cert_status_name(int s) {
    return s == V_OCSP_CERTSTATUS_GOOD ? "good" : s == V_OCSP_CERTSTATUS_REVOKED ? "revoked" : "unknown";
}

kv describe_ocsp(OCSP_RESPONSE* resp) {
    kv f;
    const int st = OCSP_response_status(resp);
    f.emplace_back("response status", OCSP_response_status_str(st));
    if (st != OCSP_RESPONSE_STATUS_SUCCESSFUL) return f;
    auto bs = ossl::ocsp_basicresp(OCSP_response_get1_basic(resp));
    if (!bs) return f;
    const ASN1_OCTET_STRING* key_hash = nullptr;
    const X509_NAME* by_name = nullptr;
    OCSP_resp_get0_id(bs.get(), &key_hash, &by_name);
    if (by_name) {
        f.emplace_back("responder", name_text(by_name));
    } else if (key_hash) {
        std::string hex;
        static constexpr char digits[] = "0123456789ABCDEF";
        for (int i = 0; i < ASN1_STRING_length(key_hash); ++i) {
            const unsigned char b = ASN1_STRING_get0_data(key_hash)[i];
            hex += std::string{digits[b >> 4], digits[b & 15]};
        }
        f.emplace_back("responder key hash", hex);
    }
    f.push_back(time_entry("produced at", OCSP_resp_get0_produced_at(bs.get())));
    f.emplace_back("signature", algorithm_text(OCSP_resp_get0_tbs_sigalg(bs.get())));
    f.emplace_back("nonce",
                   OCSP_BASICRESP_get_ext_by_NID(bs.get(), NID_id_pkix_OCSP_Nonce, -1) >= 0 ? "present" : "none");
    const auto* certs = OCSP_resp_get0_certs(bs.get());
    for (int i = 0; certs && i < sk_X509_num(certs); ++i)
        f.emplace_back("signer certificate", name_text(X509_get_subject_name(sk_X509_value(certs, i))));
    for (int i = 0; i < OCSP_resp_count(bs.get()); ++i) {
        OCSP_SINGLERESP* single = OCSP_resp_get0(bs.get(), i);
        const OCSP_CERTID* id = OCSP_SINGLERESP_get0_id(single);
        ASN1_INTEGER* serial = nullptr;
        ASN1_OBJECT* md = nullptr;
        OCSP_id_get0_info(nullptr, &md, nullptr, &serial, const_cast<OCSP_CERTID*>(id));
        int reason = -1;
        ASN1_GENERALIZEDTIME *rev = nullptr, *thisupd = nullptr, *nextupd = nullptr;
        const int s = OCSP_single_get0_status(single, &reason, &rev, &thisupd, &nextupd);
        const std::string p = "cert " + std::to_string(i + 1) + " ";
        if (serial) f.push_back(serial_entry(p + "serial", serial));
        char mdname[64] = "-";
        if (md) OBJ_obj2txt(mdname, sizeof mdname, md, 0);
        f.emplace_back(p + "hash algorithm", mdname);
        f.emplace_back(p + "status", cert_status_name(s));
        if (s == V_OCSP_CERTSTATUS_REVOKED) {
            f.push_back(time_entry(p + "revocation time", rev));
            f.emplace_back(p + "revocation reason", reason_name(reason));
        }
        f.push_back(time_entry(p + "this update", thisupd));
        f.push_back(time_entry(p + "next update", nextupd));
    }
    return f;
}

// The label of the first PEM block ("CERTIFICATE"), "" when `data` is not PEM.
std::string pem_label(const std::string& data) {
    const auto b = data.find("-----BEGIN ");
    if (b == std::string::npos) return {};
    const auto e = data.find("-----", b + 11);
    return e == std::string::npos ? std::string() : data.substr(b + 11, e - b - 11);
}

int inspect(const cli_invocation& inv) {
    const auto file = inv.positional.at(0);
    const bool as_json = inv.vm["json"].as<bool>();
    const std::string data = read_input_file(file);
    const auto label = pem_label(data);
    auto b = ossl::mem_bio(data);
    if (label == "CERTIFICATE" || label == "TRUSTED CERTIFICATE") {
        int count = 0;
        while (auto c = ossl::x509(PEM_read_bio_X509_AUX(b.get(), nullptr, nullptr, nullptr))) {
            if (!as_json && count) std::cout << "\n";
            print_kv("certificate", describe_cert(c.get()), as_json);
            ++count;
        }
        (void)ossl::drain_errors();
        if (count) return 0;
    } else if (label == "CERTIFICATE REQUEST" || label == "NEW CERTIFICATE REQUEST") {
        if (auto r = ossl::x509_req(PEM_read_bio_X509_REQ(b.get(), nullptr, nullptr, nullptr))) {
            print_kv("certificate request", describe_csr(r.get()), as_json);
            return 0;
        }
    } else if (label == "X509 CRL") {
        if (auto c = ossl::x509_crl(PEM_read_bio_X509_CRL(b.get(), nullptr, nullptr, nullptr))) {
            print_kv("crl", describe_crl(c.get()), as_json);
            return 0;
        }
    } else if (label.empty()) {
        // DER: whichever structure parses the whole input.
        auto der = [&](auto d2i, auto& holder) {
            const auto* p = reinterpret_cast<const unsigned char*>(data.data());
            holder.reset(d2i(nullptr, &p, static_cast<long>(data.size())));
            const bool whole = holder && p == reinterpret_cast<const unsigned char*>(data.data()) + data.size();
            if (!whole) holder.reset();
            (void)ossl::drain_errors();
            return whole;
        };
        ossl::x509 c;
        ossl::x509_req r;
        ossl::x509_crl crl;
        ossl::ocsp_response o;
        if (der(d2i_X509, c)) return print_kv("certificate", describe_cert(c.get()), as_json), 0;
        if (der(d2i_X509_REQ, r)) return print_kv("certificate request", describe_csr(r.get()), as_json), 0;
        if (der(d2i_X509_CRL, crl)) return print_kv("crl", describe_crl(crl.get()), as_json), 0;
        if (der(d2i_OCSP_RESPONSE, o)) return print_kv("ocsp response", describe_ocsp(o.get()), as_json), 0;
    }
    (void)ossl::drain_errors();
    throw cli_failure(file + ": not a certificate, CSR, CRL (PEM or DER) or OCSP response (DER)");
}

// ---- relying-party checks ----

ossl::x509 parse_cert(const std::string& data, const std::string& what) {
    if (pem_label(data).empty()) {
        if (auto c = load_cert_der(data)) return std::move(*c);
    } else if (auto c = load_cert_pem(data)) {
        return std::move(*c);
    }
    (void)ossl::drain_errors();
    throw cli_failure(what + ": not a certificate (PEM or DER)");
}

// A URL named in the certificate: the AIA entry `method` (RFC 5280 4.2.2.1).
std::string aia_url(X509* cert, int method) {
    auto aia = ossl::authority_info_access(
        static_cast<AUTHORITY_INFO_ACCESS*>(X509_get_ext_d2i(cert, NID_info_access, nullptr, nullptr)));
    for (int i = 0; aia && i < sk_ACCESS_DESCRIPTION_num(aia.get()); ++i) {
        ACCESS_DESCRIPTION* ad = sk_ACCESS_DESCRIPTION_value(aia.get(), i);
        if (OBJ_obj2nid(ad->method) == method && ad->location->type == GEN_URI)
            return std::string(
                reinterpret_cast<const char*>(ASN1_STRING_get0_data(ad->location->d.uniformResourceIdentifier)),
                static_cast<std::size_t>(ASN1_STRING_length(ad->location->d.uniformResourceIdentifier)));
    }
    return {};
}

// The first URI of the CRL distribution points (RFC 5280 4.2.1.13).
std::string crl_url(X509* cert) {
    auto dps = ossl::crl_dist_points(
        static_cast<CRL_DIST_POINTS*>(X509_get_ext_d2i(cert, NID_crl_distribution_points, nullptr, nullptr)));
    for (int i = 0; dps && i < sk_DIST_POINT_num(dps.get()); ++i) {
        DIST_POINT* dp = sk_DIST_POINT_value(dps.get(), i);
        if (!dp->distpoint || dp->distpoint->type != 0) continue;
        GENERAL_NAMES* names = dp->distpoint->name.fullname;
        for (int j = 0; j < sk_GENERAL_NAME_num(names); ++j) {
            GENERAL_NAME* n = sk_GENERAL_NAME_value(names, j);
            if (n->type == GEN_URI)
                return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.uniformResourceIdentifier)),
                                   static_cast<std::size_t>(ASN1_STRING_length(n->d.uniformResourceIdentifier)));
        }
    }
    return {};
}

// GET or POST an absolute URL; the body of a 200 answer.
std::string fetch(const std::string& url, const po::variables_map& vm, const std::string& method = "GET",
                  const std::string& body = {}, const std::string& content_type = {}) {
    auto u = parse_url(url);
    tls_files tls;
    if (vm.count("cacert")) tls.cacert = vm["cacert"].as<std::string>();
    http_connection conn(u, tls, std::chrono::seconds(vm["timeout"].as<int>()));
    std::vector<std::pair<std::string, std::string>> h;
    if (!content_type.empty()) h.emplace_back("Content-Type", content_type);
    auto a = conn.request(method, u.target, body, h);
    if (a.status != 200) throw cli_failure(method + " " + url + ": HTTP " + std::to_string(a.status));
    return a.body;
}

// The issuer: --issuer FILE, else the certificate's AIA caIssuers URL; checked to have signed `cert`.
ossl::x509 issuer_of(X509* cert, const po::variables_map& vm) {
    ossl::x509 issuer;
    if (vm.count("issuer")) {
        issuer = parse_cert(read_input_file(vm["issuer"].as<std::string>()), vm["issuer"].as<std::string>());
    } else {
        const auto url = aia_url(cert, NID_ad_ca_issuers);
        if (url.empty()) throw cli_usage_error("the certificate names no CA issuer URL: give --issuer FILE");
        issuer = parse_cert(fetch(url, vm), url);
    }
    EVP_PKEY* key = X509_get0_pubkey(issuer.get());
    if (X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(issuer.get())) != 0 || !key ||
        X509_verify(cert, key) != 1) {
        (void)ossl::drain_errors();
        throw cli_failure("the certificate was not issued by " + name_text(X509_get_subject_name(issuer.get())));
    }
    return issuer;
}

void check_options(po::options_description& d, const char* url_help) {
    d.add_options()("url", po::value<std::string>()->value_name("URL"),
                    url_help)("issuer", po::value<std::string>()->value_name("FILE"),
                              "the issuing CA's certificate (default: fetched from the certificate's caIssuers URL)")(
        "cacert", po::value<std::string>()->value_name("FILE"), "trust anchors for https URLs (default: the system's)")(
        "timeout", po::value<int>()->default_value(30)->value_name("SECONDS"), "for each request");
    add_json_option(d);
}

// Prints a check's verdict; exit 0 only for good.
int verdict(const json::object& o, bool as_json) {
    if (as_json) {
        print_json(o);
    } else {
        std::cout << str_of(o, "serial") << ": " << str_of(o, "status");
        if (str_of(o, "status") == "revoked")
            std::cout << " at " << str_of(o, "revoked_at") << " (reason " << str_of(o, "reason") << ")";
        std::cout << "\n  source: " << str_of(o, "source") << " " << terminal_safe(str_of(o, "url"))
                  << "\n  this update: " << str_of(o, "this_update") << "\n  next update: " << str_of(o, "next_update")
                  << "\n";
    }
    return str_of(o, "status") == "good" ? 0 : 1;
}

std::string iso(const ASN1_TIME* t) { return t ? format_time(from_asn1_time(t)) : std::string(); }

int ocsp_check(const cli_invocation& inv) {
    const auto& vm = inv.vm;
    auto cert = parse_cert(read_input_file(inv.positional.at(0)), inv.positional.at(0));
    auto issuer = issuer_of(cert.get(), vm);
    const std::string url = vm.count("url") ? vm["url"].as<std::string>() : aia_url(cert.get(), NID_ad_OCSP);
    if (url.empty()) throw cli_usage_error("the certificate names no OCSP responder: give --url");
    const bool nonce = !vm["no-nonce"].as<bool>();
    auto req = ossl::ocsp_request(OCSP_REQUEST_new());
    auto id = ossl::ocsp_certid(OCSP_cert_to_id(nullptr, cert.get(), issuer.get()));
    auto id_again = ossl::ocsp_certid(OCSP_cert_to_id(nullptr, cert.get(), issuer.get()));
    if (!req || !id || !id_again || !OCSP_request_add0_id(req.get(), id.get()))
        throw cli_failure("cannot build the OCSP request: " + ossl::drain_errors());
    (void)id.release(); // owned by the request now
    if (nonce && !OCSP_request_add1_nonce(req.get(), nullptr, -1))
        throw cli_failure("cannot add a nonce: " + ossl::drain_errors());
    const int len = i2d_OCSP_REQUEST(req.get(), nullptr);
    if (len <= 0) throw cli_failure("cannot encode the OCSP request");
    std::string req_der(static_cast<std::size_t>(len), '\0');
    auto* out = reinterpret_cast<unsigned char*>(req_der.data());
    if (i2d_OCSP_REQUEST(req.get(), &out) != len) throw cli_failure("cannot encode the OCSP request");
    // RFC 6960 A.1: POST with Content-Type application/ocsp-request.
    const std::string body = fetch(url, vm, "POST", req_der, "application/ocsp-request");
    const auto* p = reinterpret_cast<const unsigned char*>(body.data());
    auto resp = ossl::ocsp_response(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(body.size())));
    if (!resp) throw cli_failure(url + ": the answer is not an OCSP response");
    if (const int st = OCSP_response_status(resp.get()); st != OCSP_RESPONSE_STATUS_SUCCESSFUL)
        throw cli_failure(url + ": OCSP responder answered " + OCSP_response_status_str(st));
    auto bs = ossl::ocsp_basicresp(OCSP_response_get1_basic(resp.get()));
    if (!bs) throw cli_failure(url + ": no basic OCSP response");
    // RFC 6960 3.2: the signer is the CA or a responder it delegated (id-kp-OCSPSigning) to.
    auto store = ossl::x509_store(X509_STORE_new());
    if (!store || !X509_STORE_add_cert(store.get(), issuer.get())) throw cli_failure("cannot build a trust store");
    if (OCSP_basic_verify(bs.get(), nullptr, store.get(), 0) != 1)
        throw cli_failure(url + ": the OCSP response's signature does not verify: " + ossl::drain_errors());
    if (nonce && OCSP_check_nonce(req.get(), bs.get()) != 1)
        throw cli_failure(url + ": the OCSP response does not echo our nonce");
    int status = -1, reason = -1;
    ASN1_GENERALIZEDTIME *rev = nullptr, *thisupd = nullptr, *nextupd = nullptr;
    if (!OCSP_resp_find_status(bs.get(), id_again.get(), &status, &reason, &rev, &thisupd, &nextupd))
        throw cli_failure(url + ": the OCSP response does not answer for this certificate");
    // RFC 5019 4: a response whose thisUpdate is in the future or nextUpdate past is not to be used.
    if (!OCSP_check_validity(thisupd, nextupd, 300, -1))
        throw cli_failure(url + ": the OCSP response is outside its validity period");
    json::object o{{"serial", shown(serial_to_decimal(X509_get0_serialNumber(cert.get())))},
                   {"status", cert_status_name(status)},
                   {"source", "ocsp"},
                   {"url", url},
                   {"this_update", iso(thisupd)},
                   {"next_update", iso(nextupd)}};
    if (status == V_OCSP_CERTSTATUS_REVOKED) {
        o["revoked_at"] = iso(rev);
        o["reason"] = reason_name(reason);
    }
    return verdict(o, vm["json"].as<bool>());
}

int crl_check(const cli_invocation& inv) {
    const auto& vm = inv.vm;
    auto cert = parse_cert(read_input_file(inv.positional.at(0)), inv.positional.at(0));
    auto issuer = issuer_of(cert.get(), vm);
    const std::string url = vm.count("url") ? vm["url"].as<std::string>() : crl_url(cert.get());
    if (url.empty()) throw cli_usage_error("the certificate names no CRL distribution point: give --url");
    const auto data = fetch(url, vm);
    ossl::x509_crl crl;
    if (pem_label(data) == "X509 CRL") {
        auto b = ossl::mem_bio(data);
        crl.reset(PEM_read_bio_X509_CRL(b.get(), nullptr, nullptr, nullptr));
    } else {
        const auto* p = reinterpret_cast<const unsigned char*>(data.data());
        crl.reset(d2i_X509_CRL(nullptr, &p, static_cast<long>(data.size())));
    }
    if (!crl) throw cli_failure(url + ": not a CRL");
    // RFC 5280 6.3.3 (f), (g): the CRL is the issuer's and its signature verifies with the issuer's key.
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(issuer.get())) != 0 ||
        X509_CRL_verify(crl.get(), X509_get0_pubkey(issuer.get())) != 1) {
        (void)ossl::drain_errors();
        throw cli_failure(url + ": the CRL is not signed by the certificate's issuer");
    }
    const auto now = std::chrono::system_clock::now();
    const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
    // RFC 5280 6.3.3 (a)(2): a CRL past its nextUpdate is not current.
    if (!next || from_asn1_time(next) < now)
        throw cli_failure(url + ": the CRL is stale (nextUpdate " + iso(next) + " has passed)");
    X509_REVOKED* rev = nullptr;
    const bool revoked = X509_CRL_get0_by_serial(crl.get(), &rev, X509_get0_serialNumber(cert.get())) == 1 && rev;
    json::object o{{"serial", shown(serial_to_decimal(X509_get0_serialNumber(cert.get())))},
                   {"status", revoked ? "revoked" : "good"},
                   {"source", "crl"},
                   {"url", url},
                   {"this_update", iso(X509_CRL_get0_lastUpdate(crl.get()))},
                   {"next_update", iso(next)}};
    if (revoked) {
        o["revoked_at"] = iso(X509_REVOKED_get0_revocationDate(rev));
        o["reason"] = reason_name(crl_entry_reason(rev));
    }
    return verdict(o, vm["json"].as<bool>());
}

} // namespace

std::vector<cli_command> pki_commands() {
    std::vector<cli_command> out;
    out.push_back({"inspect", "FILE", "describe a certificate, CSR, CRL or OCSP response (no server needed)",
                   "PEM or DER (OCSP responses: DER); every certificate of a PEM bundle. Extensions are printed as\n"
                   "`openssl x509 -text` prints them. FILE - reads stdin.",
                   "  certmate inspect alice.crt\n  certmate inspect crl.der --json", 1, 1, false,
                   [](po::options_description& d) { add_json_option(d); }, inspect});
    out.push_back({"ocsp check", "CERT", "ask the certificate's OCSP responder whether it is revoked",
                   "Sends an RFC 6960 request (with a nonce) to the responder the certificate names, verifies the\n"
                   "signature up to the issuer and prints good, revoked or unknown. Exit 0 only for good.",
                   "  certmate ocsp check alice.crt --issuer ca.crt", 1, 1, false,
                   [](po::options_description& d) {
                       check_options(d, "the OCSP responder (default: the certificate's AIA OCSP URL)");
                       d.add_options()("no-nonce", po::bool_switch(), "send no nonce (allows a cached response)");
                   },
                   ocsp_check});
    out.push_back({"crl check", "CERT", "look the certificate up in the CRL it names",
                   "Fetches the CRL from the certificate's distribution point, checks the issuer's signature and\n"
                   "that it is current, and prints good or revoked. Exit 0 only for good.",
                   "  certmate crl check alice.crt --issuer ca.crt", 1, 1, false,
                   [](po::options_description& d) {
                       check_options(d, "the CRL (default: the certificate's CRL distribution point)");
                   },
                   crl_check});
    return out;
}

} // namespace certmate::app
