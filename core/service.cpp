#include "core/service.hpp"

#include "core/cert_json.hpp"
#include "core/encoding.hpp"
#include "core/csr.hpp"
#include "core/keys.hpp"
#include "core/pkcs12.hpp"
#include "core/record_codec.hpp"

#include <spdlog/spdlog.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>

namespace certmate {

namespace {

// A certificate issued in memory, not yet written: what write_ahead audits before the store.
struct made_cert {
    cert_view view;
    cert_files files;
};

boost::json::object details_of(const cert_record& r) {
    return {{"serial_number", r.serial_number},
            {"common_name", r.subject.common_name},
            {"cert_usage", std::string(to_string(r.usage))}};
}

audit_entry entry_for(std::string operation, const std::string& id, const principal& who, boost::json::object details) {
    audit_entry e;
    e.operation = std::move(operation);
    e.resource_id = id;
    e.user = who.user;
    e.ip_address = who.ip;
    e.actor = actor_json(who);
    e.details = std::move(details);
    if (!who.job.empty()) e.details["job"] = who.job;
    return e;
}

// Records a failure; the mutation did not happen, so a lost line loses no change (logged).
void audit_failure(audit_sink& log, audit_entry e, const error& err) {
    e.status = "failure";
    e.error = err.message;
    if (auto r = log.append(e); !r)
        spdlog::error("audit append failed for {} {}: {}", e.operation, e.resource_id, r.error().message);
}

// The write-ahead rule (SECURITY.md "Audit"): `made` is the change prepared in memory (or
// why it could not be made); its entry is appended and fsynced first, and only then does
// `apply` write it to the store or hand a secret out. No entry, no change: AUDIT_UNAVAILABLE.
// A failed apply is audited as a failure with `rolled_back`.
template <class T, class Apply>
result<T> write_ahead(audit_sink& log, audit_entry e, result<T> made, Apply apply) {
    if (!made) {
        audit_failure(log, std::move(e), made.error());
        return made;
    }
    if (auto a = log.append(e); !a) {
        spdlog::error("{} {} refused: {}", e.operation, e.resource_id, a.error().message);
        return make_error(errc::audit_unavailable, "the audit log cannot be written; nothing was changed");
    }
    if (auto w = apply(*made); !w) {
        e.details["rolled_back"] = true;
        audit_failure(log, std::move(e), w.error());
        return w.error();
    }
    return made;
}

int lifetime_days(const cert_record& r) {
    auto d = std::chrono::duration_cast<std::chrono::hours>(r.expires_at - r.not_before).count() / 24;
    return static_cast<int>(std::max<long>(1, d));
}

// EKUs beyond clientAuth that a certificate carries, by name.
std::vector<std::string> extra_ekus(const cert_record& r) {
    std::vector<std::string> out;
    for (const auto& e : r.extended_key_usage)
        if (e != "clientAuth") out.push_back(e);
    return out;
}

// Lower-case ASCII.
std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// Whether `name` (lower case) is allowed by `pattern`: equal, or pattern "*.rest" and name one
// non-wildcard label followed by ".rest".
bool name_matches(const std::string& name, const std::string& pattern) {
    if (name == pattern) return true;
    if (pattern.size() < 3 || pattern.compare(0, 2, "*.") != 0) return false;
    const std::string_view rest = std::string_view(pattern).substr(1); // ".example.com"
    if (name.size() <= rest.size() || name.compare(name.size() - rest.size(), rest.size(), rest) != 0) return false;
    const std::string_view label = std::string_view(name).substr(0, name.size() - rest.size());
    return label.find('.') == std::string_view::npos && label.find('*') == std::string_view::npos;
}

// A host name as a TLS client compares it: lower case, one trailing dot dropped (RFC 6125 6.2.1
// treats "a.example." and "a.example" alike), an IP address in its canonical text form
// ("0:0:0:0:0:0:0:1" is "::1": the same bytes in the certificate).
std::string canonical_host(std::string_view name) {
    std::string n = lower(name);
    if (n.size() > 1 && n.back() == '.') n.pop_back();
    unsigned char bin[16];
    char text[INET6_ADDRSTRLEN] = {};
    if (::inet_pton(AF_INET, n.c_str(), bin) == 1 && ::inet_ntop(AF_INET, bin, text, sizeof text)) return text;
    if (::inet_pton(AF_INET6, n.c_str(), bin) == 1 && ::inet_ntop(AF_INET6, bin, text, sizeof text)) return text;
    return n;
}

// Whether a certificate naming `name` would also be accepted for `host` (both canonical): the
// same, or one of them a wildcard "*.rest" and the other one label followed by ".rest" (RFC 6125
// 6.4.3).
bool names_overlap(const std::string& name, const std::string& host) {
    return name == host || name_matches(host, name) || name_matches(name, host);
}

// serverAuth through the API: admins only, names within the patterns, never the CA's own names.
result<void> check_server_auth(const issue_request& req, const server_name_policy& policy, const principal& who) {
    const bool wants = std::find(req.extra_eku.begin(), req.extra_eku.end(), "serverAuth") != req.extra_eku.end();
    if (!wants) return {};
    if (who.role != api_role::admin)
        return make_error(errc::forbidden, "serverAuth certificates need the admin role", "extended_key_usage");
    if (policy.patterns.empty())
        return make_error(errc::forbidden,
                          "serverAuth is not allowed through the API (issuance.server_name_patterns is empty)",
                          "extended_key_usage");
    std::vector<std::pair<std::string, const char*>> names;
    names.emplace_back(lower(req.subject.common_name), "common_name");
    for (const auto& d : req.sans.dns) names.emplace_back(lower(d), "subject_alt_names.dns");
    for (const auto& ip : req.sans.ip) names.emplace_back(lower(ip), "subject_alt_names.ip");
    for (const auto& [name, field] : names) {
        for (const auto& r : policy.reserved)
            if (names_overlap(canonical_host(name), canonical_host(r)))
                return make_error(errc::forbidden, "'" + name + "' is a name of this CA's own listener", field);
        bool ok = false;
        for (const auto& p : policy.patterns) ok = ok || name_matches(name, lower(p));
        if (!ok)
            return make_error(errc::forbidden, "'" + name + "' matches no issuance.server_name_patterns entry", field);
    }
    return {};
}

bool carries_server_auth(const cert_record& r) {
    return std::find(r.extended_key_usage.begin(), r.extended_key_usage.end(), "serverAuth") !=
           r.extended_key_usage.end();
}

// Private keys and renewals of a certificate above the caller (a higher api_role, or a serverAuth
// certificate for an operator) are refused: they would hand the caller that identity.
result<void> check_ceiling(const cert_record& r, const principal& who, std::string_view what) {
    if (r.role && static_cast<int>(*r.role) > static_cast<int>(who.role))
        return make_error(errc::forbidden, std::string(what) + " of a certificate with api_role " +
                                               std::string(to_string(*r.role)) + " needs that role");
    if (carries_server_auth(r) && who.role != api_role::admin)
        return make_error(errc::forbidden, std::string(what) + " of a serverAuth certificate needs the admin role");
    return {};
}

// A principal may only grant a role at or below its own.
result<void> check_grant(std::optional<api_role> role, const principal& who) {
    if (role && static_cast<int>(*role) > static_cast<int>(who.role))
        return make_error(errc::forbidden, "api_role " + std::string(to_string(*role)) + " is above your own role",
                          "api_role");
    return {};
}

} // namespace

std::string_view to_string(principal::kind k) noexcept {
    switch (k) {
    case principal::kind::system: return "system";
    case principal::kind::token: return "token";
    case principal::kind::certificate: return "certificate";
    case principal::kind::anonymous: return "anonymous";
    }
    return "system";
}

boost::json::object actor_json(const principal& who) {
    boost::json::object a{{"kind", std::string(to_string(who.actor))}};
    if (who.actor == principal::kind::certificate) {
        a["id"] = who.user;
        a["serial"] = who.cert_serial;
    } else {
        a["name"] = who.user;
    }
    a["role"] = std::string(to_string(who.role));
    return a;
}

cert_service::cert_service(std::shared_ptr<const certificate_authority> ca, std::unique_ptr<cert_repository> store,
                           std::shared_ptr<audit_sink> audit, service_config cfg, clock_fn clock, rng_fn rng)
    : ca_(std::move(ca)), store_(std::move(store)), audit_(std::move(audit)), cfg_(std::move(cfg)),
      clock_(std::move(clock)), rng_(std::move(rng)) {}

result<load_report> cert_service::load() {
    auto report = store_->load_all(std::max(1u, cfg_.load_threads));
    if (!report) return report.error();
    for (const auto& left : report->removed_leftovers)
        spdlog::warn("storage: cleaned leftover of an interrupted write: {}", left);
    for (const auto& skip : report->skipped) spdlog::warn("storage: skipped {}", skip);
    for (auto& rec : report->records) index_record(std::move(rec));
    report->records.clear();
    report->records.shrink_to_fit();
    // Nothing to write until a certificate changes when the snapshot was whole and current.
    if (report->from_snapshot && report->replayed == 0) snapshot_at_ = store_->write_count();
    applied_seq_ = report->change_seq;

    auto state = store_->load_crl_state();
    if (!state) return state.error();
    crl_number_ = state->crl_number;
    crl_dirty_ = true;
    auto published = store_->published_crl();
    const auto number = published ? crl_number_of(published->first) : std::nullopt;
    // A CRL number must not go back (RFC 5280 5.2.3): with the number kept lost (crl_state.json
    // removed, a partial restore) the files' number is the floor, not 0.
    if (number && *number > crl_number_) {
        spdlog::warn("the CRL files carry CRL number {}, above the {} kept: numbering continues above them", *number,
                     crl_number_);
        crl_number_ = *number;
    }
    if (published && state->this_update && state->next_update) {
        // The CRL files are a mirror written after the CRL was served (cert_repository::
        // publish_next_crl): a stop between its number kept and its files written leaves older
        // files, which lack revocations already acknowledged and carry a number below one
        // served. Those are not served: the start-up build (above every number kept) comes
        // first (docs/architecture.md "CRL publication"). The PEM is the DER's, whatever crl.pem holds.
        auto pem = crl_pem_of(published->first);
        // A revocation is acknowledged once it is durable, before a CRL lists it (where the
        // store says one instance serves the CRL, crl_served_by_one_instance): a stop in between
        // leaves a kept CRL without it, also not served. It must list exactly the revoked set
        // loaded (encoded byte for byte as a build would list it). (A shared store's revocations
        // wait for their CRL: not checked there.)
        bool covers = true;
        if (store_->crl_served_by_one_instance()) {
            const auto listed = crl_listed_entries(published->first);
            covers = listed && crl_bad_entries_ == 0 && *listed == crl_entries_.concatenated();
        }
        if (number && *number == state->crl_number && pem && covers) {
            auto crl = std::make_shared<built_crl>();
            crl->der = std::move(published->first);
            crl->pem = std::move(*pem);
            crl->crl_number = state->crl_number;
            crl->this_update = *state->this_update;
            crl->next_update = *state->next_update;
            crl_.store(std::shared_ptr<const built_crl>(std::move(crl)));
        } else if (number && *number == state->crl_number && pem) {
            spdlog::warn("CRL {} does not list the revocation state loaded (a stop before the CRL of a change "
                         "was built): none is served until a new CRL is built",
                         state->crl_number);
        } else {
            spdlog::warn("the CRL files (CRL number {}) are not CRL {}, the last one kept (a stop before they "
                         "were written): none is served until a new CRL is built",
                         number ? std::to_string(*number) : std::string("unreadable"), state->crl_number);
        }
    }
    spdlog::info("loaded {} certificates; CRL number {}", index_.size(), crl_number_);
    return report;
}

std::optional<staged<bool>> cert_service::stage_snapshot(std::chrono::seconds settle, bool force) {
    if (snapshot_running_ || !busy_ids_.empty()) return std::nullopt;
    const std::uint64_t at = store_->write_count();
    if (at == snapshot_at_) return std::nullopt;
    if (!force) {
        const time_point now = clock_();
        if (at != snapshot_seen_) {
            snapshot_seen_ = at;
            snapshot_seen_at_ = now;
        }
        if (now - snapshot_seen_at_ < settle) return std::nullopt;
    }
    // No write is in flight (busy_ids_ is empty): the index holds everything written up to `at`.
    auto records = std::make_shared<std::string>();
    std::size_t count = 0;
    index_.for_each([&](const cert_record& r) {
        append_framed_record(r, *records);
        ++count;
    });
    snapshot_running_ = true;
    auto* store = store_.get();
    staged<bool> s;
    s.work = [store, records, count, at]() -> result<bool> { return store->save_snapshot(*records, count, at); };
    s.commit = [this, at, count](result<bool> r) -> result<bool> {
        snapshot_running_ = false;
        if (!r)
            spdlog::error("start-up snapshot not written: {}", r.error().message);
        else if (*r) {
            snapshot_at_ = at;
            spdlog::info("start-up snapshot written: {} certificates", count);
        }
        return r;
    };
    return s;
}

namespace {
// The listener's own certificates (usage server, from `certmate init --server-cert`): only an admin
// may revoke or unhold them, and the API never renews them or gives them an api_role.
result<void> check_server_usage(const cert_record& r, const principal& who, std::string_view what) {
    if (r.usage == cert_usage::server && who.role != api_role::admin)
        return make_error(errc::forbidden, std::string(what) + " of the listener's certificate needs the admin role");
    return {};
}
} // namespace

result<const cert_record*> cert_service::find_for_mutation(const std::string& id) const {
    if (!valid_identifier(id))
        return make_error(errc::invalid_identifier, "invalid certificate identifier", "identifier");
    const cert_record* rec = index_.find(id);
    if (!rec) return make_error(errc::not_found, "certificate not found");
    if (busy_ids_.count(id)) return make_error(errc::conflict, "another operation on this certificate is in progress");
    return rec;
}

result<std::string> cert_service::reserve_serial() {
    for (;;) {
        auto s = random_serial(rng_);
        if (!s) return s.error();
        if (!index_.serial_exists(*s) && !reserved_serials_.count(*s)) {
            reserved_serials_.insert(*s);
            return s;
        }
    }
}

std::string cert_service::generate_identifier() {
    for (;;) {
        unsigned char b[6];
        rng_(b);
        const std::string id = "cert-" + hex_encode(b);
        if (!index_.find(id) && !busy_ids_.count(id)) return id;
    }
}

time_point cert_service::stored_now() const { return std::chrono::floor<std::chrono::seconds>(clock_()); }

bool cert_service::index_record(cert_record rec) {
    // The encoded revoked set follows the record: its earlier entries out, its current ones in.
    std::vector<crl_entry> old_entries;
    if (const cert_record* before = index_.find(rec.identifier)) old_entries = crl_entries_of(*before);
    for (const auto& e : old_entries) crl_entries_.erase(e.serial_decimal);
    const std::vector<crl_entry> new_entries = crl_entries_of(rec);
    auto same = [](const crl_entry& a, const crl_entry& b) {
        return a.serial_decimal == b.serial_decimal && a.revoked_at == b.revoked_at && a.reason == b.reason &&
               a.invalidity_date == b.invalidity_date;
    };
    const bool crl_changed =
        !std::equal(old_entries.begin(), old_entries.end(), new_entries.begin(), new_entries.end(), same);
    for (const auto& e : new_entries)
        if (auto r = crl_entries_.put(e); !r) {
            ++crl_bad_entries_;
            spdlog::error("CRL entry of {} ({}) cannot be encoded: {}", rec.identifier, e.serial_decimal,
                          r.error().message);
        }
    ocsp_single_answer cur;
    if (rec.revocation.revoked) {
        cur.status = ocsp_single_answer::state::revoked;
        cur.revoked_at = rec.revocation.revoked_at.value_or(time_point{});
        cur.reason = rec.revocation.reason;
    } else {
        cur.status = ocsp_single_answer::state::good;
    }
    ocsp_->set(rec.serial_number, cur);
    owners_->set(rec.serial_number, serial_owner{rec.identifier, rec.role, true});
    for (const auto& h : rec.history) {
        ocsp_single_answer old;
        if (h.revoked) {
            old.status = ocsp_single_answer::state::revoked;
            old.revoked_at = h.revoked_at.value_or(h.superseded_at);
            old.reason = h.reason.value_or(revocation_reason::superseded);
        } else {
            old.status = ocsp_single_answer::state::good;
        }
        ocsp_->set(h.serial_number, old);
        owners_->set(h.serial_number, serial_owner{rec.identifier, rec.role, false});
    }
    index_.upsert(std::move(rec));
    return crl_changed;
}

cert_view cert_service::view(const cert_record& r, std::string pem) const {
    return cert_view{r, status_at(r, clock_()), std::move(pem)};
}

namespace {
// Identifiers that would collide with routes under /api/client-certs/ (batch, stats, ca) or with
// the dashboard's /client-certificates/new and /client-certificates/batch (docs/api.md).
bool reserved_identifier(std::string_view id) { return id == "batch" || id == "stats" || id == "ca" || id == "new"; }
} // namespace

result<std::shared_ptr<parsed_csr>> cert_service::check_create(create_request& req, issue_request& ireq,
                                                               const principal& who) const {
    if (auto g = check_grant(req.role, who); !g) return g.error();
    if (req.usage == cert_usage::server)
        return make_error(errc::invalid_argument,
                          "server certificates are issued by `certmate init --server-cert`, not through the API",
                          "cert_usage");
    if (!req.identifier.empty()) {
        if (!valid_identifier(req.identifier))
            return make_error(errc::invalid_identifier, "identifier must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}",
                              "identifier");
        if (reserved_identifier(req.identifier))
            return make_error(errc::invalid_identifier, "identifier is reserved (batch, stats, ca and new name routes)",
                              "identifier");
    }
    if (!req.csr_pem.empty() && req.key)
        return make_error(errc::invalid_argument, "key_type cannot be combined with a CSR", "key_type");
    if (req.renewal_threshold_days && (*req.renewal_threshold_days < 1 || *req.renewal_threshold_days > 3650))
        return make_error(errc::invalid_argument, "renewal_threshold_days must be between 1 and 3650",
                          "renewal_threshold_days");

    // A parsed CSR is a verified CSR: checked here, before anything is reserved.
    std::shared_ptr<parsed_csr> csr;
    if (!req.csr_pem.empty()) {
        auto parsed = parse_csr(req.csr_pem);
        if (!parsed) {
            auto e = parsed.error();
            if (e.field.empty()) e.field = "csr";
            return e;
        }
        csr = std::make_shared<parsed_csr>(std::move(*parsed));
        // The CSR contributes the subject and SANs the request leaves empty.
        auto& s = req.subject;
        const auto& c = csr->subject;
        if (s.common_name.empty()) s = c;
        if (req.sans.empty()) req.sans = csr->sans;
    }
    if (req.subject.common_name.empty())
        return make_error(errc::invalid_argument, "common_name is required", "common_name");

    ireq.subject = req.subject;
    ireq.sans = req.sans;
    ireq.usage = req.usage;
    ireq.extra_eku = req.extra_eku;
    ireq.validity_days = req.validity_days ? req.validity_days : cfg_.issuance.default_validity_days;
    if (auto v = validate_issue_request(ireq, cfg_.issuance); !v) return v.error();
    if (auto v = check_server_auth(ireq, cfg_.server_names, who); !v) return v.error();
    return csr;
}

result<void> cert_service::validate_create(create_request req, const principal& who) const {
    issue_request ireq;
    auto csr = check_create(req, ireq, who);
    if (!csr) return csr.error();
    return {};
}

std::vector<std::size_t> cert_service::identifiers_in_use(const std::vector<std::string>& ids) const {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < ids.size(); ++i)
        if (index_.find(ids[i]) || busy_ids_.count(ids[i])) out.push_back(i);
    return out;
}

result<staged<cert_view>> cert_service::stage_create(create_request req, const principal& who) {
    issue_request ireq;
    auto checked = check_create(req, ireq, who);
    if (!checked) return checked.error();
    std::shared_ptr<parsed_csr> csr = std::move(*checked);
    std::string id = req.identifier;
    if (id.empty())
        id = generate_identifier();
    else if (index_.find(id) || busy_ids_.count(id))
        return make_error(errc::already_exists, "a certificate with this identifier already exists", "identifier");

    auto serial = reserve_serial();
    if (!serial) return serial.error();
    ireq.serial_decimal = std::move(*serial);
    busy_ids_.insert(id);

    cert_record base;
    base.identifier = id;
    base.usage = req.usage;
    base.notes = req.notes;
    base.renewal.renewal_enabled = req.renewal_enabled.value_or(true);
    base.renewal.renewal_threshold_days = req.renewal_threshold_days.value_or(cfg_.default_renewal_threshold_days);
    base.role = req.role;
    base.sans = req.sans;

    const key_type ktype = req.key.value_or(cfg_.default_key_type);
    const time_point now = stored_now();
    auto ca = ca_;
    auto* store = store_.get();
    auto audit = audit_;
    const auto policy = cfg_.issuance;

    staged<cert_view> s;
    s.work = [=]() -> result<cert_view> {
        boost::json::object details{{"cert_usage", std::string(to_string(base.usage))},
                                    {"common_name", ireq.subject.common_name},
                                    {"method", csr ? "csr" : "generated"}};
        auto run = [&]() -> result<made_cert> {
            cert_files files;
            cert_record rec = base;
            auto issued = [&]() -> result<issued_cert> {
                if (csr) {
                    files.csr_pem = csr->pem;
                    rec.key_type = csr->key_type;
                    return issue_certificate(*ca, csr->public_key.get(), ireq, policy, now);
                }
                auto gen = create_csr(ireq.subject, ireq.sans, ktype);
                if (!gen) return gen.error();
                files.key_pem = gen->key_pem;
                files.csr_pem = gen->csr_pem;
                rec.key_type = gen->key_type;
                rec.has_private_key = true;
                return issue_certificate(*ca, gen->key.get(), ireq, policy, now);
            }();
            if (!issued) return issued.error();
            rec.subject = ireq.subject;
            record_issued(rec, *issued, now);
            files.cert_pem = issued->pem;
            return made_cert{cert_view{rec, status_at(rec, now), issued->pem}, std::move(files)};
        };
        auto made = run();
        if (made) details["serial_number"] = made->view.record.serial_number;
        auto r = write_ahead(*audit, entry_for("create", base.identifier, who, std::move(details)), std::move(made),
                             [&](const made_cert& m) { return store->create(m.view.record, m.files); });
        if (!r) return r.error();
        return std::move(r->view);
    };
    s.commit = commit_cert(id, ireq.serial_decimal, false);
    return s;
}

// The commit of every certificate mutation [strand]: releases the identifier (and the reserved
// serial), indexes the outcome, marks the CRL for a rebuild when revocation state changed.
std::function<result<cert_view>(result<cert_view>)> cert_service::commit_cert(std::string id, std::string serial,
                                                                              bool crl_affected) {
    return [this, id = std::move(id), serial = std::move(serial), crl_affected](result<cert_view> r) {
        busy_ids_.erase(id);
        if (!serial.empty()) reserved_serials_.erase(serial);
        if (r) {
            index_record(r->record);
            if (crl_affected) crl_dirty_ = true;
        }
        return r;
    };
}

// Metadata-only mutations (revoke, unhold, update): write metadata.json and audit [pool], then
// index the record [strand]; `crl_affected` marks the CRL for a rebuild.
staged<cert_view> cert_service::stage_metadata_change(cert_record updated, std::string operation,
                                                      boost::json::object details, const principal& who,
                                                      bool crl_affected) {
    const std::string id = updated.identifier;
    busy_ids_.insert(id);
    auto* store = store_.get();
    auto audit = audit_;
    const time_point now = stored_now();
    staged<cert_view> s;
    s.work = [=]() -> result<cert_view> {
        return write_ahead(*audit, entry_for(operation, id, who, details),
                           result<cert_view>(cert_view{updated, status_at(updated, now), {}}),
                           [&](const cert_view& v) { return store->write_metadata(v.record); });
    };
    s.commit = commit_cert(id, {}, crl_affected);
    return s;
}

result<staged<cert_view>> cert_service::stage_revoke(const std::string& id, revoke_request req, const principal& who) {
    auto found = find_for_mutation(id);
    if (!found) return found.error();
    const cert_record& cur = **found;
    // A hold may become a revocation for good (RFC 5280 5.3.1: certificateHold is temporary).
    const bool on_hold = cur.revocation.revoked && cur.revocation.reason == revocation_reason::certificate_hold;
    if (auto c = check_server_usage(cur, who, "revocation"); !c) return c.error();
    if (cur.revocation.revoked && (!on_hold || req.reason == revocation_reason::certificate_hold))
        return make_error(errc::already_revoked, "certificate is already revoked");

    cert_record updated = cur;
    revoke_identity(updated, stored_now(), req.reason);
    auto details = details_of(updated);
    details["reason"] = std::string(to_string(req.reason));
    boost::json::array also;
    for (std::size_t i = 0; i < cur.history.size(); ++i)
        if (updated.history[i] != cur.history[i]) also.emplace_back(cur.history[i].serial_number);
    if (!also.empty()) details["earlier_serials"] = std::move(also);
    return stage_metadata_change(std::move(updated), "revoke", std::move(details), who, true);
}

result<staged<cert_view>> cert_service::stage_unhold(const std::string& id, const principal& who) {
    auto found = find_for_mutation(id);
    if (!found) return found.error();
    const cert_record& cur = **found;
    if (auto c = check_server_usage(cur, who, "unhold"); !c) return c.error();
    if (!cur.revocation.revoked || cur.revocation.reason != revocation_reason::certificate_hold)
        return make_error(errc::not_on_hold, "certificate is not on hold");

    cert_record updated = cur;
    unhold_identity(updated);
    auto details = details_of(updated);
    return stage_metadata_change(std::move(updated), "unhold", std::move(details), who, true);
}

result<staged<cert_view>> cert_service::stage_renew(const std::string& id, int validity_days, const principal& who,
                                                    bool automatic) {
    auto found = find_for_mutation(id);
    if (!found) return found.error();
    const cert_record& cur = **found;
    if (cur.revocation.revoked) return make_error(errc::conflict, "a revoked certificate cannot be renewed");
    if (cur.usage == cert_usage::server)
        return make_error(errc::conflict, "the listener's certificate is renewed by `certmate init --server-cert`");
    if (auto c = check_ceiling(cur, who, "renewal"); !c) return c.error();
    if (validity_days < 0 || validity_days > cfg_.issuance.max_validity_days)
        return make_error(errc::invalid_argument,
                          "validity_days must be between 1 and " + std::to_string(cfg_.issuance.max_validity_days),
                          "validity_days");

    issue_request ireq;
    ireq.subject = cur.subject;
    ireq.sans = cur.sans;
    ireq.usage = cur.usage;
    ireq.extra_eku = extra_ekus(cur);
    ireq.validity_days = validity_days ? validity_days : std::min(lifetime_days(cur), cfg_.issuance.max_validity_days);
    if (auto v = check_server_auth(ireq, cfg_.server_names, who); !v) return v.error();
    auto serial = reserve_serial();
    if (!serial) return serial.error();
    ireq.serial_decimal = std::move(*serial);
    busy_ids_.insert(id);

    auto ca = ca_;
    auto* store = store_.get();
    auto audit = audit_;
    const auto policy = cfg_.issuance;
    const bool revoke_old = cfg_.revoke_superseded;
    const time_point now = stored_now();
    const std::string operation = automatic ? "auto_renew" : "renew";

    staged<cert_view> s;
    s.work = [=]() -> result<cert_view> {
        auto run = [&]() -> result<made_cert> {
            cert_files files;
            cert_record rec = cur;
            auto issued = [&]() -> result<issued_cert> {
                if (cur.has_private_key) {
                    // Re-key: a fresh key of the same type.
                    auto type = parse_key_type(cur.key_type);
                    if (!type) return make_error(errc::unsupported_key, "cannot re-key a " + cur.key_type + " key");
                    auto gen = create_csr(ireq.subject, ireq.sans, *type);
                    if (!gen) return gen.error();
                    files.key_pem = gen->key_pem;
                    files.csr_pem = gen->csr_pem;
                    return issue_certificate(*ca, gen->key.get(), ireq, policy, now);
                }
                // Re-sign the stored CSR's key.
                auto pem = store->read_file(cur.usage, cur.identifier, file_kind::csr);
                if (!pem) return make_error(errc::not_found, "the stored CSR of this certificate is missing");
                auto csr = parse_csr(*pem);
                if (!csr) return make_error(errc::invalid_csr, "the stored CSR is unusable: " + csr.error().message);
                return issue_certificate(*ca, csr->public_key.get(), ireq, policy, now);
            }();
            if (!issued) return issued.error();
            history_entry h;
            h.serial_number = cur.serial_number;
            h.not_before = cur.not_before;
            h.expires_at = cur.expires_at;
            h.fingerprint_sha256 = cur.fingerprint_sha256;
            h.superseded_at = now;
            if (revoke_old) {
                h.revoked = true;
                h.revoked_at = now;
                h.reason = revocation_reason::superseded;
            }
            rec.history.push_back(std::move(h));
            record_issued(rec, *issued, now);
            rec.renewal.last_renewed_at = now;
            files.cert_pem = issued->pem;
            return made_cert{cert_view{rec, status_at(rec, now), issued->pem}, std::move(files)};
        };
        auto made = run();
        auto details = details_of(cur);
        details["previous_serial"] = cur.serial_number;
        if (made) details["serial_number"] = made->view.record.serial_number;
        auto r = write_ahead(*audit, entry_for(operation, id, who, std::move(details)), std::move(made),
                             [&](const made_cert& m) { return store->replace(m.view.record, m.files); });
        if (!r) return r.error();
        return std::move(r->view);
    };
    s.commit = commit_cert(id, ireq.serial_decimal, revoke_old);
    return s;
}

result<staged<cert_view>> cert_service::stage_update(const std::string& id, update_request req, const principal& who) {
    auto found = find_for_mutation(id);
    if (!found) return found.error();
    if (req.renewal_threshold_days && (*req.renewal_threshold_days < 1 || *req.renewal_threshold_days > 3650))
        return make_error(errc::invalid_argument, "renewal_threshold_days must be between 1 and 3650",
                          "renewal_threshold_days");
    if (req.notes && req.notes->size() > 4096)
        return make_error(errc::invalid_argument, "notes must be at most 4096 bytes", "notes");

    cert_record updated = **found;
    boost::json::object changed;
    if (req.notes) {
        updated.notes = *req.notes;
        changed["notes"] = *req.notes;
    }
    // The sweep never renews the listener's certificate (`certmate init --server-cert` does).
    if (req.renewal_enabled && *req.renewal_enabled && updated.usage == cert_usage::server)
        return make_error(errc::invalid_argument,
                          "the listener's certificate is renewed by `certmate init --server-cert`", "renewal_enabled");
    if (req.renewal_enabled) {
        updated.renewal.renewal_enabled = *req.renewal_enabled;
        changed["renewal_enabled"] = *req.renewal_enabled;
    }
    if (req.renewal_threshold_days) {
        updated.renewal.renewal_threshold_days = *req.renewal_threshold_days;
        changed["renewal_threshold_days"] = *req.renewal_threshold_days;
    }
    if (req.role && updated.usage == cert_usage::server)
        return make_error(errc::invalid_argument, "the listener's certificate cannot carry an api_role", "api_role");
    if (req.role) {
        // Changing api_role needs a role at or above both the old and the new one.
        if (auto g = check_grant(updated.role, who); !g) return g.error();
        if (auto g = check_grant(*req.role, who); !g) return g.error();
        updated.role = *req.role;
        changed["api_role"] =
            *req.role ? boost::json::value(std::string(to_string(**req.role))) : boost::json::value(nullptr);
    }
    return stage_metadata_change(std::move(updated), "update", {{"changed", changed}}, who, false);
}

result<staged<downloaded_file>> cert_service::stage_download(const std::string& id, file_format f,
                                                             const principal& who) {
    if (!valid_identifier(id))
        return make_error(errc::invalid_identifier, "invalid certificate identifier", "identifier");
    const cert_record* rec = index_.find(id);
    if (!rec) return make_error(errc::not_found, "certificate not found");
    if (f == file_format::key_pem) {
        if (!rec->has_private_key)
            return make_error(errc::no_private_key, "no private key is held for this certificate");
        if (auto c = check_ceiling(*rec, who, "the private key"); !c) return c.error();
    }
    auto* store = store_.get();
    auto audit = audit_;
    auto ca = ca_;
    const cert_usage usage = rec->usage;
    const auto details = details_of(*rec);
    staged<downloaded_file> s;
    s.work = [=]() -> result<downloaded_file> {
        const file_kind kind = f == file_format::key_pem   ? file_kind::key
                               : f == file_format::csr_pem ? file_kind::csr
                                                           : file_kind::cert;
        auto data = store->read_file(usage, id, kind);
        auto r = [&]() -> result<downloaded_file> {
            if (!data)
                return data.error().code == errc::not_found && kind == file_kind::csr
                           ? make_error(errc::not_found, "no CSR is stored for this certificate")
                           : data.error();
            if (f == file_format::cert_der) {
                auto cert = load_cert_pem(*data);
                if (!cert) return cert.error();
                auto der = cert_to_der(cert->get());
                if (!der) return der.error();
                return downloaded_file{std::move(*der), id};
            }
            if (f == file_format::chain_pem) {
                std::string chain = *data;
                if (!chain.empty() && chain.back() != '\n') chain += '\n';
                return downloaded_file{chain + ca->cert_pem(), id};
            }
            return downloaded_file{std::move(*data), id};
        }();
        if (f != file_format::key_pem) return r;
        auto d = details;
        d["format"] = "private_key_pem";
        // The key leaves the process only after its download is on disk.
        return write_ahead(*audit, entry_for("download", id, who, std::move(d)), std::move(r),
                           [](const downloaded_file&) { return result<void>(); });
    };
    s.commit = [](result<downloaded_file> r) { return r; };
    return s;
}

result<staged<std::vector<std::pair<std::string, std::string>>>>
cert_service::stage_bundle(const std::vector<std::string>& ids, bool keys, const principal& who) {
    struct item {
        std::string id;
        cert_usage usage;
        bool key;
    };
    std::vector<item> items;
    items.reserve(ids.size());
    std::size_t key_count = 0;
    for (const auto& id : ids) {
        const cert_record* rec = index_.find(id);
        if (!rec) continue;
        const bool key = keys && rec->has_private_key && check_ceiling(*rec, who, "the private key").has_value();
        key_count += key ? 1 : 0;
        items.push_back(item{id, rec->usage, key});
    }
    auto* store = store_.get();
    auto audit = audit_;
    auto ca = ca_;
    using files = std::vector<std::pair<std::string, std::string>>;
    staged<files> s;
    s.work = [=]() -> result<files> {
        files out;
        out.emplace_back("ca.crt", ca->cert_pem());
        for (const auto& it : items) {
            auto cert = store->read_file(it.usage, it.id, file_kind::cert);
            if (!cert) return cert.error();
            std::string chain = *cert;
            if (!chain.empty() && chain.back() != '\n') chain += '\n';
            out.emplace_back(it.id + "/" + it.id + ".crt", *cert);
            out.emplace_back(it.id + "/" + it.id + "-chain.pem", chain + ca->cert_pem());
            if (it.key) {
                auto key = store->read_file(it.usage, it.id, file_kind::key);
                if (!key) return key.error();
                out.emplace_back(it.id + "/" + it.id + ".key", std::move(*key));
            }
        }
        if (key_count == 0) return out;
        // The keys leave the process only after their download is on disk (one entry for all).
        return write_ahead(
            *audit,
            entry_for("download", "bundle", who,
                      {{"format", "archive"}, {"certificates", items.size()}, {"private_keys", key_count}}),
            result<files>(std::move(out)), [](const files&) { return result<void>(); });
    };
    s.commit = [](result<files> r) { return r; };
    return s;
}

result<staged<downloaded_file>> cert_service::stage_pkcs12(const std::string& id, std::string password,
                                                           const principal& who) {
    if (!valid_identifier(id))
        return make_error(errc::invalid_identifier, "invalid certificate identifier", "identifier");
    const cert_record* rec = index_.find(id);
    if (!rec) return make_error(errc::not_found, "certificate not found");
    if (!rec->has_private_key) return make_error(errc::no_private_key, "no private key is held for this certificate");
    if (password.size() < 8)
        return make_error(errc::invalid_argument, "password must be at least 8 characters", "password");
    if (auto c = check_ceiling(*rec, who, "a PKCS#12 of the private key"); !c) return c.error();

    auto* store = store_.get();
    auto audit = audit_;
    auto ca = ca_;
    const cert_usage usage = rec->usage;
    auto details = details_of(*rec);
    details["format"] = "pkcs12";
    const std::string name = rec->subject.common_name;
    staged<downloaded_file> s;
    s.work = [=]() -> result<downloaded_file> {
        auto run = [&]() -> result<downloaded_file> {
            auto cert = store->read_file(usage, id, file_kind::cert);
            if (!cert) return cert.error();
            auto key = store->read_file(usage, id, file_kind::key);
            if (!key) return key.error();
            auto p12 = build_pkcs12(*cert, *key, ca->cert_pem(), password, name);
            if (!p12) return p12.error();
            return downloaded_file{std::move(*p12), id};
        };
        return write_ahead(*audit, entry_for("download", id, who, details), run(),
                           [](const downloaded_file&) { return result<void>(); });
    };
    s.commit = [](result<downloaded_file> r) { return r; };
    return s;
}

// [any thread] The signer of `ca`'s CRLs, made on first use (one signature: on the pool).
result<std::shared_ptr<const crl_signer>> cert_service::crl_signer_for() const {
    std::lock_guard lock(crl_signer_mu_);
    if (!crl_signer_) {
        auto made = crl_signer::make(ca_);
        if (!made) return made.error();
        crl_signer_ = std::move(*made);
    }
    return crl_signer_;
}

bool cert_service::crl_due(std::chrono::seconds margin) const {
    auto crl = current_crl();
    return !crl || clock_() + margin >= crl->next_update;
}

std::optional<staged<std::shared_ptr<const built_crl>>> cert_service::stage_crl_build(bool force) {
    // Two builds may run at once where the store numbers each CRL `at_least` exactly
    // (cert_repository::crl_builds_may_overlap): their signatures run in parallel, the one staged
    // later carries the higher number and every change the earlier one has, and a CRL is served
    // only above the current number (docs/architecture.md "CRL publication"). Elsewhere (a shared
    // store numbers in the order builds reach its lock, not the order they were staged) one at a time.
    const unsigned limit = store_->crl_builds_may_overlap() ? 2 : 1;
    if (crl_builds_ >= limit || (crl_builds_ > 0 && !crl_dirty_)) {
        if (force) crl_dirty_ = true;
        return std::nullopt;
    }
    // Rebuild when a quarter of the validity is left at the latest.
    const auto margin = std::chrono::duration_cast<std::chrono::seconds>(cfg_.crl_validity) / 4;
    if (!force && !crl_dirty_ && !crl_due(margin)) return std::nullopt;

    // Any entry that could not be encoded fails the build (a CRL missing a revocation is worse
    // than an old one that runs out): the same outcome build_crl had.
    auto entries = std::make_shared<const std::string>(crl_entries_.concatenated());
    const std::size_t bad = crl_bad_entries_;
    // Above the number of any build staged still running, so numbers follow the staging order.
    const std::uint64_t at_least = std::max(crl_number_, crl_staged_number_) + 1;
    crl_staged_number_ = at_least;
    // The entries reflect every change of another instance up to here: the store refuses the
    // build when a newer one exists (its revocation could be missing).
    const std::uint64_t seq = applied_seq_;
    crl_params params;
    params.this_update = clock_();
    params.next_update = params.this_update + cfg_.crl_validity;
    ++crl_builds_;
    crl_dirty_ = false;

    auto* store = store_.get();
    staged<std::shared_ptr<const built_crl>> s;
    s.work = [=, this]() -> result<std::shared_ptr<const built_crl>> {
        if (bad > 0) return make_error(errc::crypto_failure, std::to_string(bad) + " CRL entries cannot be encoded");
        auto signer = crl_signer_for();
        if (!signer) return signer.error();
        auto sign = [&](std::uint64_t number) -> result<built_crl> {
            crl_params p = params;
            p.crl_number = number;
            return (*signer)->build(*entries, p);
        };
        auto crl = store->publish_next_crl(at_least, seq, sign);
        if (!crl) return crl.error();
        return std::shared_ptr<const built_crl>(std::make_shared<built_crl>(std::move(*crl)));
    };
    s.commit = [this, at_least,
                seq](result<std::shared_ptr<const built_crl>> r) -> result<std::shared_ptr<const built_crl>> {
        --crl_builds_;
        if (r) {
            crl_build_failing_ = false;
            crl_conflict_at_.reset();
            crl_number_ = std::max(crl_number_, (*r)->crl_number);
            // A newer CRL of another instance may have been applied while this one was signed,
            // or a build staged after this one, with every change it has, finished first.
            auto cur = crl_.load();
            if (!cur || cur->crl_number < (*r)->crl_number) {
                crl_.store(*r);
                spdlog::info("CRL {} published", (*r)->crl_number);
            } else {
                spdlog::debug("CRL {} not served: CRL {} is out already", (*r)->crl_number, cur->crl_number);
            }
        } else if (r.error().code == errc::conflict) {
            // Not a failure: the build runs again once the missing change is applied here.
            crl_dirty_ = true;
            crl_conflict_at_ = seq;
            // Nothing kept: the next build may ask for the same number (one build at a time here).
            if (crl_builds_ == 0) crl_staged_number_ = crl_number_;
            spdlog::debug("CRL build deferred: {}", r.error().message);
        } else {
            // The number may have been kept before the failure: never reuse it.
            crl_number_ = std::max(crl_number_, at_least);
            crl_dirty_ = true;
            crl_build_failing_ = true;
            spdlog::error("CRL build failed: {}", r.error().message);
        }
        return r;
    };
    return s;
}

std::optional<staged<std::shared_ptr<const built_crl>>> cert_service::apply_changes(std::vector<store_change> changes) {
    bool crl_published = false;
    std::size_t applied = 0;
    for (auto& c : changes) {
        if (c.seq <= applied_seq_) continue; // reflected already (the load, or an earlier delivery)
        applied_seq_ = c.seq;
        ++applied;
        if (c.record && index_record(std::move(*c.record))) crl_dirty_ = true;
        crl_published = crl_published || c.crl_published;
    }
    if (applied > 0) spdlog::debug("applied {} changes of other instances (sequence {})", applied, applied_seq_);
    if (!crl_published) return std::nullopt;
    auto* store = store_.get();
    auto ca = ca_;
    staged<std::shared_ptr<const built_crl>> s;
    s.work = [store, ca]() -> result<std::shared_ptr<const built_crl>> {
        auto kept = store->published_crl();
        if (!kept) return make_error(errc::not_found, "the store keeps no published CRL");
        auto crl = read_published_crl(*ca, std::move(kept->first), std::move(kept->second));
        if (!crl) return crl.error();
        return std::shared_ptr<const built_crl>(std::make_shared<built_crl>(std::move(*crl)));
    };
    s.commit = [this](result<std::shared_ptr<const built_crl>> r) -> result<std::shared_ptr<const built_crl>> {
        if (!r) {
            spdlog::warn("the CRL another instance published cannot be served: {}", r.error().message);
            return r;
        }
        auto cur = crl_.load();
        if (!cur || cur->crl_number < (*r)->crl_number) {
            crl_number_ = std::max(crl_number_, (*r)->crl_number);
            crl_.store(*r);
            spdlog::info("CRL {} (published by another instance) served", (*r)->crl_number);
        }
        return r;
    };
    return s;
}

result<cert_view> cert_service::get(const std::string& id) const {
    if (!valid_identifier(id))
        return make_error(errc::invalid_identifier, "invalid certificate identifier", "identifier");
    const cert_record* rec = index_.find(id);
    if (!rec) return make_error(errc::not_found, "certificate not found");
    return view(*rec);
}

list_page cert_service::list(const list_query& q) const { return index_.query(q, clock_(), cfg_.expiring_days); }

list_page cert_service::list(const list_query& q,
                             const std::function<void(const cert_record&, cert_status)>& visit) const {
    const time_point now = clock_();
    return index_.query(q, now, cfg_.expiring_days, [&](const cert_record& r) { visit(r, status_at(r, now)); });
}

cert_stats cert_service::stats() const { return index_.stats(clock_(), cfg_.expiring_days); }

std::vector<std::string> cert_service::renewal_plan(time_point now) const { return index_.due_for_renewal(now); }

renewal_summary cert_service::run_renewal_sweep_sync(const principal& who) {
    auto sweep = begin_renewal_sweep();
    for (const auto& id : sweep.plan) count_renewal(sweep.summary, id, run_sync(stage_sweep_renewal(id, who)));
    sweep.summary.finished_at = clock_();
    finish_renewal_sweep(sweep.summary);
    return std::move(sweep.summary);
}

cert_service::renewal_sweep cert_service::begin_renewal_sweep() const {
    renewal_sweep sweep;
    sweep.summary.started_at = clock_();
    sweep.plan = renewal_plan(sweep.summary.started_at);
    sweep.summary.candidates = sweep.plan.size();
    return sweep;
}

void cert_service::count_renewal(renewal_summary& sum, const std::string& id, const result<cert_view>& r) {
    renewal_outcome o{id, bool(r), r ? r->record.serial_number : std::string(), r ? std::string() : r.error().message};
    (o.ok ? sum.renewed : sum.failed)++;
    sum.outcomes.push_back(std::move(o));
}

void cert_service::finish_renewal_sweep(const renewal_summary& sum) const {
    if (auto w = store_->save_last_sweep(sum); !w)
        spdlog::error("cannot record the renewal sweep: {}", w.error().message);
    spdlog::info("renewal sweep: {} due, {} renewed, {} failed", sum.candidates, sum.renewed, sum.failed);
}

result<void> cert_service::audit_before(const audit_entry& e) const {
    if (auto a = audit_->append(e); !a) {
        spdlog::error("{} {} refused: {}", e.operation, e.resource_id, a.error().message);
        return make_error(errc::audit_unavailable, "the audit log cannot be written; nothing was changed");
    }
    return {};
}

void cert_service::audit(const audit_entry& e) const {
    if (auto r = audit_->append(e); !r) spdlog::error("audit append failed: {}", r.error().message);
}

std::vector<cert_service::health_check> cert_service::health() const {
    const auto now = clock_();
    std::vector<health_check> out;
    auto check = [&](std::string name, bool good, std::string bad) {
        out.push_back(health_check{std::move(name), good, good ? std::string() : std::move(bad)});
    };
    check("ca", ca_->not_after() > now, "the CA certificate has expired");
    check("audit", audit_->healthy(), "the audit log cannot be written; mutations are refused");
    auto crl = current_crl();
    // A failing build is degraded even with a current CRL: the revocations since are in no CRL
    // and, acknowledged before their CRL (docs/architecture.md "CRL publication"), make every CRL
    // request wait and get 503. The message is public: no store error (it may name a path).
    check("crl", crl && crl->next_update > now && !crl_build_failing_.load(),
          !crl                      ? "no CRL published yet"
          : crl->next_update <= now ? "the CRL is past its nextUpdate"
                                    : "the CRL cannot be built: the last build failed (see the log)");
    auto problem = store_->problem();
    check("storage", !problem, problem.value_or(""));
    return out;
}

} // namespace certmate
