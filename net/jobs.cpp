#include "net/jobs.hpp"

#include "net/api.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>

#include <set>
#include <thread>

namespace certmate::net {

namespace {

// How long a revoke job waits for the CRL that lists its revocations before it finishes anyway
// (the CRL is still published; only the job's end no longer waits for it).
constexpr std::chrono::seconds crl_wait{60};

// The rows' audit trail: what a job entry says about the job.
audit_entry job_entry(std::string operation, const job_record& j, const principal& who) {
    audit_entry e;
    e.operation = std::move(operation);
    e.resource_type = "job";
    e.resource_id = j.id;
    e.user = who.user;
    e.ip_address = who.ip;
    e.actor = actor_json(who);
    e.details = {{"job", j.id},
                 {"kind", std::string(to_string(j.kind))},
                 {"rows", j.total},
                 {"request_sha256", j.request_sha256}};
    if (!j.reason.empty()) e.details["reason"] = j.reason;
    return e;
}

// The identifier of row `i` of a job (the input keeps one per row).
const std::string& row_identifier(const job_input& in, std::size_t i) { return in.identifiers.at(i); }

// Kept rows that do not fit their job (a torn or edited file) are unreadable: one identifier per
// row, and a create body per row for a create job.
result<job_input> fitting(result<job_input> in, const job_record& j) {
    if (!in) return in;
    if (in->identifiers.size() != j.total || (j.kind == job_kind::create && in->rows.size() != j.total))
        return make_error(errc::storage_failure, "the kept rows do not match the job's " + std::to_string(j.total));
    return in;
}

// A job is steered (cancelled, resumed) only by a role at least its submitter's (docs/api.md
// "Batch jobs"): an operator neither stops an admin's job nor re-runs its rows as an operator.
result<void> may_steer(const job_record& j, const principal& who, std::string_view what) {
    if (static_cast<int>(who.role) < static_cast<int>(j.role))
        return make_error(errc::forbidden, std::string(what) + " of a job submitted with the " +
                                               std::string(to_string(j.role)) + " role needs that role");
    return {};
}

// The lease of a job (cert_repository::try_lead).
std::string lease_name(const std::string& id) { return "job:" + id; }

// The submitter of a job as kept (job_record::actor, role): a job taken over from a dead instance
// runs its rows as it, as a resume by the submitter would.
principal submitter_of(const job_record& j) {
    principal p = system_principal("job-takeover");
    auto text = [&](const char* k) -> std::string {
        if (auto* v = j.actor.if_contains(k); v && v->is_string()) return std::string(v->as_string());
        return {};
    };
    const std::string kind = text("kind");
    if (kind == "token") {
        p.actor = principal::kind::token;
        p.user = text("name");
    } else if (kind == "certificate") {
        p.actor = principal::kind::certificate;
        p.user = text("id");
        p.cert_serial = text("serial");
    } else if (kind == "system" && !text("name").empty()) {
        p.user = text("name");
    }
    p.role = j.role;
    p.job = j.id;
    return p;
}

} // namespace

asio::awaitable<result<std::unique_ptr<task_lease>>> job_runner::lead(const std::string& id) {
    auto& svc = api_.core.view();
    auto lead_fn = [&svc, name = lease_name(id)]() { return svc.try_lead(name); };
    co_return co_await api_.core.in_pool(lead_fn);
}

void job_runner::drop_lease(std::unique_ptr<task_lease> l) {
    if (!l) return;
    // A shared store's lease ends with a database call: never on an io thread.
    asio::post(api_.core.pool(), [l = std::shared_ptr<task_lease>(std::move(l))]() mutable { l.reset(); });
}

unsigned job_runner::parallel_rows() const {
    if (api_.opts.jobs.parallel_rows) return api_.opts.jobs.parallel_rows;
    unsigned pool = api_.opts.pool_threads ? api_.opts.pool_threads : std::max(1u, std::thread::hardware_concurrency());
    return std::max(2u, pool / 2);
}

asio::awaitable<result<void>> job_runner::save(entry& e) {
    job_record copy;
    {
        std::lock_guard lk(mu_);
        copy = e.rec;
        e.last_save = std::chrono::steady_clock::now();
    }
    auto& svc = api_.core.view();
    auto save_fn = [&svc, &copy]() { return svc.save_job(copy); };
    auto r = co_await api_.core.in_pool(save_fn);
    if (!r) spdlog::error("job {}: progress not kept: {}", copy.id, r.error().message);
    co_return r;
}

asio::awaitable<void> job_runner::recount(entry& e) {
    std::vector<std::size_t> pending;
    job_kind kind;
    std::shared_ptr<const job_input> held;
    {
        std::lock_guard lk(mu_);
        kind = e.rec.kind;
        held = e.input;
        for (std::size_t i = 0; i < e.rec.outcomes.size(); ++i)
            if (e.rec.outcomes[i] == static_cast<char>(row_outcome::pending)) pending.push_back(i);
    }
    if (pending.empty() || !held) co_return;
    const job_input& in = *held;
    std::vector<std::size_t> done;
    auto check = [&](cert_service& s) {
        for (auto i : pending) {
            auto v = s.get(row_identifier(in, i));
            if (!v) continue;
            if (kind == job_kind::create || v->record.revocation.revoked) done.push_back(i);
        }
        return 0;
    };
    co_await api_.core.in_core(check);
    auto& svc = api_.core.view();
    if (svc.shared_store() && done.size() < pending.size()) {
        // Another instance's last commits may not have reached this one's index yet: the store decides.
        std::vector<std::size_t> left;
        std::vector<std::string> ids;
        for (auto i : pending)
            if (std::find(done.begin(), done.end(), i) == done.end()) {
                left.push_back(i);
                ids.push_back(row_identifier(in, i));
            }
        auto find_fn = [&svc, &ids]() { return svc.find_records(ids); };
        auto found = co_await api_.core.in_pool(find_fn);
        if (!found) {
            spdlog::error("job {}: rows not recounted from the store: {}", e.rec.id, found.error().message);
        } else {
            std::map<std::string, const cert_record*> by_id;
            for (const auto& r : *found) by_id[r.identifier] = &r;
            for (auto i : left)
                if (auto it = by_id.find(row_identifier(in, i));
                    it != by_id.end() && (kind == job_kind::create || it->second->revocation.revoked))
                    done.push_back(i);
        }
    }
    std::lock_guard lk(mu_);
    for (auto i : done) e.rec.outcomes[i] = static_cast<char>(row_outcome::ok);
}

asio::awaitable<void> job_runner::recover() {
    auto& svc = api_.core.view();
    auto load_fn = [&svc]() { return svc.load_jobs(); };
    auto kept = co_await api_.core.in_pool(load_fn);
    for (auto& j : kept) {
        if (std::lock_guard lk(mu_); jobs_.count(j.id)) {
            spdlog::error("job {} is kept twice; the second copy is ignored", j.id);
            continue;
        }
        auto e = std::make_shared<entry>();
        const bool was_live = !finished(j.state);
        const std::string was = std::string(to_string(j.state));
        const std::string id = j.id;
        e->rec = std::move(j);
        {
            std::lock_guard lk(mu_);
            jobs_[id] = e;
        }
        if (!was_live) continue;
        // On a shared store, a job whose lease is held runs on another instance: shown as kept.
        auto lease = co_await lead(id);
        if (!lease) {
            spdlog::error("job {}: cannot ask the store whether it runs elsewhere ({}); left as kept", id,
                          lease.error().message);
            continue;
        }
        if (!*lease) {
            spdlog::info("job {} is {} on another instance", id, was);
            continue;
        }
        auto input_fn = [&svc, &id, &e]() { return fitting(svc.load_job_input(id), e->rec); };
        auto in = co_await api_.core.in_pool(input_fn);
        if (in) {
            {
                std::lock_guard lk(mu_);
                e->input = std::make_shared<const job_input>(std::move(*in));
            }
            co_await recount(*e);
            std::lock_guard lk(mu_);
            e->input.reset(); // a resume reads the rows again
        } else {
            spdlog::error("job {}: its rows cannot be read ({}); it cannot be resumed", id, in.error().message);
        }
        {
            std::lock_guard lk(mu_);
            e->rec.state = in ? job_state::interrupted : job_state::failed;
            e->rec.finished_at = svc.now();
        }
        spdlog::warn("job {} was {} when the server stopped: {} of {} rows done; POST /api/jobs/{}/resume "
                     "finishes it",
                     id, was, e->rec.done(), e->rec.total, id);
        co_await save(*e);
        drop_lease(std::move(*lease));
    }
}

asio::awaitable<result<job_record>> job_runner::submit(job_record j, job_input in, principal who) {
    auto& svc = api_.core.view();
    if (queue_full()) co_return make_error(errc::busy, "too many batch jobs are queued; try again later");
    const std::string op = j.kind == job_kind::create ? "batch_create" : "batch_revoke";
    // Held from now to the job's end, so that no other instance takes it for a dead one's.
    auto lease = co_await lead(j.id);
    if (!lease) co_return lease.error();
    if (!*lease) co_return make_error(errc::conflict, "job " + j.id + " is held by another instance");
    auto entry_ = job_entry(op, j, who);
    entry_.details["rejected_rows"] = j.count(row_outcome::failed);
    // Write-ahead: the job's entry is on disk before its rows are kept or run.
    auto persist = [&]() -> result<void> {
        if (auto a = svc.audit_before(entry_); !a) return a;
        if (auto w = svc.save_job_input(j.id, in); !w) return w;
        auto d = svc.save_job(j);
        if (!d) (void)svc.remove_job(j.id); // not accepted: its rows go too (else the start-up sweep)
        return d;
    };
    auto kept = co_await api_.core.in_pool(persist);
    if (!kept) {
        spdlog::error("job {} not accepted: {}", j.id, kept.error().message);
        drop_lease(std::move(*lease));
        co_return kept.error();
    }
    auto e = std::make_shared<entry>();
    e->lease = std::move(*lease);
    e->rec = std::move(j);
    e->who = std::move(who);
    e->who.job = e->rec.id;
    e->input = std::make_shared<const job_input>(std::move(in));
    job_record out;
    {
        std::lock_guard lk(mu_);
        jobs_[e->rec.id] = e;
        queue_.push_back(e->rec.id);
        out = e->rec;
    }
    schedule();
    co_return out;
}

bool job_runner::queue_full() const {
    std::lock_guard lk(mu_);
    return queue_.size() >= api_.opts.jobs.max_queued;
}

void job_runner::schedule() {
    std::vector<std::shared_ptr<entry>> start;
    {
        std::lock_guard lk(mu_);
        while (running_ < api_.opts.jobs.max_running) {
            auto busy = [&](const std::string& owner) {
                for (const auto& [id, e] : jobs_)
                    if (e->lease && e->rec.state == job_state::running && e->rec.owner == owner) return true;
                return false;
            };
            auto it = std::find_if(queue_.begin(), queue_.end(),
                                   [&](const std::string& id) { return !busy(jobs_.at(id)->rec.owner); });
            if (it == queue_.end()) break;
            auto e = jobs_.at(*it);
            queue_.erase(it);
            e->rec.state = job_state::running;
            ++running_;
            start.push_back(std::move(e));
        }
    }
    for (auto& e : start) {
        auto ex = asio::make_strand(api_.core.strand().get_inner_executor());
        asio::co_spawn(ex, run(e), [id = e->rec.id](std::exception_ptr p) {
            if (!p) return;
            try {
                std::rethrow_exception(p);
            } catch (const std::exception& ex) {
                spdlog::error("job {} stopped: {}", id, ex.what());
            }
        });
    }
}

asio::awaitable<bool> job_runner::run_row(entry& e, std::size_t row) {
    const job_kind kind = e.rec.kind; // fixed for the job's life
    std::shared_ptr<const job_input> held;
    {
        std::lock_guard lk(mu_);
        held = e.input;
    }
    const job_input& in = *held;
    const std::string& id = row_identifier(in, row);
    result<cert_view> r = make_error(errc::internal, "row not run");
    if (kind == job_kind::create) {
        auto rq = create_request_from_json(in.rows.at(row));
        if (!rq) {
            r = rq.error();
        } else {
            auto stage = [&](cert_service& s) { return s.stage_create(std::move(*rq), e.who); };
            r = co_await api_.core.run_staged<cert_view>(stage);
        }
    } else {
        revoke_request rr;
        rr.reason = parse_revocation_reason(e.rec.reason).value_or(revocation_reason::unspecified);
        auto stage = [&](cert_service& s) { return s.stage_revoke(id, rr, e.who); };
        r = co_await api_.core.run_staged<cert_view>(stage);
    }
    api_.stats.job_row(to_string(kind), r.has_value());
    bool save_now = false;
    {
        std::lock_guard lk(mu_);
        e.rec.outcomes[row] = static_cast<char>(r ? row_outcome::ok : row_outcome::failed);
        if (!r) {
            // A 5xx cause was logged where it happened; the row says what a client may see.
            const bool internal = status_of(r.error().code) == http::status::internal_server_error;
            e.rec.errors.push_back(row_error{row + 1, r.error().field,
                                             internal ? std::string("internal server error") : r.error().message, id});
        }
        save_now = std::chrono::steady_clock::now() - e.last_save >= std::chrono::seconds(1);
        if (save_now) e.last_save = std::chrono::steady_clock::now();
    }
    co_return save_now;
}

asio::awaitable<void> job_runner::run_rows(std::shared_ptr<entry> e, std::size_t) {
    // Workers share `next`; each takes the next pending row until none is left or the job is cancelled.
    auto next = std::make_shared<std::size_t>(0);
    const unsigned workers = parallel_rows();
    auto ex = co_await asio::this_coro::executor;
    auto left = std::make_shared<unsigned>(workers);
    asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
    auto worker = [this, e, next]() -> asio::awaitable<void> {
        for (;;) {
            std::size_t row = 0;
            {
                std::lock_guard lk(mu_);
                while (*next < e->rec.total && e->rec.outcomes[*next] != static_cast<char>(row_outcome::pending))
                    ++*next;
                if (*next >= e->rec.total || e->cancel) co_return;
                row = (*next)++;
            }
            if (co_await run_row(*e, row)) co_await save(*e);
        }
    };
    for (unsigned i = 0; i < workers; ++i)
        asio::co_spawn(ex, worker(), [left, &all_done](std::exception_ptr p) {
            if (p) {
                try {
                    std::rethrow_exception(p);
                } catch (const std::exception& x) {
                    spdlog::error("job worker stopped: {}", x.what());
                }
            }
            if (--*left == 0) all_done.cancel();
        });
    boost::system::error_code ec;
    // co_spawn starts each worker by a post, so none has finished yet: the cancel finds this wait.
    if (*left > 0) co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<void> job_runner::run(std::shared_ptr<entry> e) {
    auto& svc = api_.core.view();
    job_kind kind;
    {
        std::lock_guard lk(mu_);
        kind = e->rec.kind;
        if (!e->rec.started_at) e->rec.started_at = svc.now();
        e->rec.finished_at.reset();
    }
    co_await save(*e);
    spdlog::info("job {} ({}, {} rows) started", e->rec.id, to_string(kind), e->rec.total);
    std::uint64_t gen = 0;
    if (kind == job_kind::revoke) api_.crl.hold();
    co_await run_rows(e, 0);
    if (kind == job_kind::revoke) {
        // One CRL for the whole job (docs/api.md): the build the held revocations waited for.
        auto gen_fn = [this](cert_service&) { return api_.crl.note_change(); };
        gen = co_await api_.core.in_core(gen_fn);
        api_.crl.release();
        api_.crl.kick();
        if (!co_await api_.crl.wait_published(gen, crl_wait))
            spdlog::warn("job {}: the CRL listing its revocations is not published yet", e->rec.id);
    }
    {
        std::lock_guard lk(mu_);
        auto& r = e->rec;
        const std::size_t ok = r.count(row_outcome::ok);
        r.state =
            e->cancel ? job_state::cancelled : (ok == 0 && r.total > 0 ? job_state::failed : job_state::succeeded);
        r.finished_at = svc.now();
        --running_;
        e->cancel = false;
        // The rows are on disk (results, archive and a resume read them there): a finished job
        // keeps no copy in memory (keep_finished jobs of up to 32 MiB each).
        e->input.reset();
    }
    co_await save(*e);
    std::unique_ptr<task_lease> lease;
    {
        std::lock_guard lk(mu_);
        lease = std::move(e->lease); // after the document says it is over: no one takes it over
    }
    drop_lease(std::move(lease));
    spdlog::info("job {} {}: {} of {} rows done, {} failed", e->rec.id, to_string(e->rec.state), e->rec.done(),
                 e->rec.total, e->rec.count(row_outcome::failed));
    forget_old();
    schedule();
}

void job_runner::forget_old() {
    std::vector<std::string> drop;
    {
        std::lock_guard lk(mu_);
        std::vector<std::pair<time_point, std::string>> done;
        for (const auto& [id, e] : jobs_)
            if (!e->lease && (e->rec.state == job_state::succeeded || e->rec.state == job_state::failed ||
                              e->rec.state == job_state::cancelled))
                done.emplace_back(e->rec.finished_at.value_or(e->rec.created_at), id);
        if (done.size() <= api_.opts.jobs.keep_finished) return;
        std::sort(done.begin(), done.end());
        for (std::size_t i = 0; i + api_.opts.jobs.keep_finished < done.size(); ++i) {
            drop.push_back(done[i].second);
            jobs_.erase(done[i].second);
        }
    }
    asio::post(api_.core.pool(), [&svc = api_.core.view(), drop] {
        for (const auto& id : drop)
            if (auto r = svc.remove_job(id); !r) spdlog::warn("job {} not removed: {}", id, r.error().message);
    });
}

std::optional<job_record> job_runner::get(const std::string& id) const {
    std::lock_guard lk(mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return std::nullopt;
    return it->second->rec;
}

std::vector<job_record> job_runner::list() const {
    std::lock_guard lk(mu_);
    std::vector<job_record> out;
    for (const auto& [id, e] : jobs_) out.push_back(e->rec);
    std::sort(out.begin(), out.end(), [](const job_record& a, const job_record& b) {
        return a.created_at != b.created_at ? a.created_at > b.created_at : a.id > b.id;
    });
    return out;
}

std::map<std::string, std::size_t> job_runner::counts_by_state() const {
    std::map<std::string, std::size_t> out;
    for (auto s : {job_state::queued, job_state::running, job_state::succeeded, job_state::failed, job_state::cancelled,
                   job_state::interrupted})
        out[std::string(to_string(s))] = 0;
    std::lock_guard lk(mu_);
    for (const auto& [id, e] : jobs_) ++out[std::string(to_string(e->rec.state))];
    return out;
}

asio::awaitable<result<job_record>> job_runner::cancel(const std::string& id, const principal& who) {
    std::shared_ptr<entry> e;
    bool was_queued = false;
    {
        std::lock_guard lk(mu_);
        auto it = jobs_.find(id);
        if (it == jobs_.end()) co_return make_error(errc::not_found, "no such job");
        e = it->second;
        if (auto m = may_steer(e->rec, who, "cancelling"); !m) co_return m.error();
        if (finished(e->rec.state))
            co_return make_error(errc::conflict, "the job is " + std::string(to_string(e->rec.state)) + " already");
        if (!e->lease) co_return make_error(errc::conflict, "the job runs on another instance; cancel it there");
    }
    auto& svc = api_.core.view();
    auto entry_ = job_entry("batch_cancel", e->rec, who);
    auto audit_fn = [&svc, &entry_]() { return svc.audit_before(entry_); };
    if (auto a = co_await api_.core.in_pool(audit_fn); !a) co_return a.error();
    std::unique_ptr<task_lease> lease;
    {
        std::lock_guard lk(mu_);
        if (finished(e->rec.state)) co_return e->rec;
        if (auto q = std::find(queue_.begin(), queue_.end(), id); q != queue_.end()) {
            queue_.erase(q);
            e->rec.state = job_state::cancelled;
            e->rec.finished_at = svc.now();
            e->input.reset(); // on disk, as for any finished job
            was_queued = true;
        } else {
            e->cancel = true;
        }
    }
    if (was_queued) {
        co_await save(*e);
        {
            std::lock_guard lk(mu_);
            lease = std::move(e->lease);
        }
        drop_lease(std::move(lease));
    }
    co_return get(id).value_or(e->rec);
}

asio::awaitable<result<job_record>> job_runner::resume(const std::string& id, principal who) {
    std::shared_ptr<entry> e;
    {
        std::lock_guard lk(mu_);
        auto it = jobs_.find(id);
        if (it == jobs_.end()) co_return make_error(errc::not_found, "no such job");
        e = it->second;
        if (auto m = may_steer(e->rec, who, "resuming"); !m) co_return m.error();
        if (e->rec.state != job_state::interrupted && e->rec.state != job_state::cancelled)
            co_return make_error(errc::conflict, "only an interrupted or cancelled job can be resumed; this one is " +
                                                     std::string(to_string(e->rec.state)));
        if (e->lease) co_return make_error(errc::conflict, "the job is being resumed already");
    }
    auto lease = co_await lead(id);
    if (!lease) co_return lease.error();
    if (!*lease) co_return make_error(errc::conflict, "the job runs on another instance");
    co_return co_await requeue(std::move(e), std::move(who), std::move(*lease), "batch_resume");
}

asio::awaitable<result<job_record>> job_runner::requeue(std::shared_ptr<entry> e, principal who,
                                                        std::unique_ptr<task_lease> lease, std::string operation) {
    const std::string id = e->rec.id;
    {
        // The lease goes into the entry at once: refresh() leaves an entry holding one alone.
        std::lock_guard lk(mu_);
        if (e->lease || (e->rec.state != job_state::interrupted && e->rec.state != job_state::cancelled)) {
            drop_lease(std::move(lease));
            co_return make_error(errc::conflict, "the job was resumed already");
        }
        e->lease = std::move(lease);
    }
    auto fail = [&](error err) -> result<job_record> {
        std::unique_ptr<task_lease> l;
        {
            std::lock_guard lk(mu_);
            l = std::move(e->lease);
        }
        drop_lease(std::move(l));
        return err;
    };
    auto& svc = api_.core.view();
    job_record rec;
    bool loaded = false;
    {
        std::lock_guard lk(mu_);
        rec = e->rec;
        loaded = e->input != nullptr;
    }
    if (!loaded) {
        auto input_fn = [&svc, &id, &rec]() { return fitting(svc.load_job_input(id), rec); };
        auto in = co_await api_.core.in_pool(input_fn);
        if (!in) co_return fail(make_error(errc::conflict, "the job's rows cannot be read; it cannot be resumed"));
        std::lock_guard lk(mu_);
        e->input = std::make_shared<const job_input>(std::move(*in));
    }
    co_await recount(*e);
    auto entry_ = job_entry(operation, e->rec, who);
    entry_.details["done_before"] = e->rec.done();
    auto audit_fn = [&svc, &entry_]() { return svc.audit_before(entry_); };
    if (auto a = co_await api_.core.in_pool(audit_fn); !a) co_return fail(a.error());
    bool gone = false;
    {
        std::lock_guard lk(mu_);
        // forget_old may have dropped the job (a finished one) while its rows were read.
        if (auto it = jobs_.find(id); it == jobs_.end() || it->second != e) {
            gone = true;
        } else {
            e->who = std::move(who);
            e->who.job = id;
            e->rec.state = job_state::queued;
            e->rec.finished_at.reset();
            ++e->rec.resumes;
            queue_.push_back(id);
        }
    }
    if (gone) co_return fail(make_error(errc::not_found, "no such job"));
    co_await save(*e);
    schedule();
    co_return get(id).value_or(e->rec);
}

asio::awaitable<void> job_runner::refresh() {
    auto& svc = api_.core.view();
    if (!svc.shared_store()) co_return;
    auto load_fn = [&svc]() { return svc.load_jobs(); };
    auto kept = co_await api_.core.in_pool(load_fn);
    std::vector<std::string> live; // kept live, not run here
    {
        std::lock_guard lk(mu_);
        std::set<std::string> ids;
        for (auto& j : kept) {
            ids.insert(j.id);
            auto it = jobs_.find(j.id);
            if (it == jobs_.end()) {
                auto e = std::make_shared<entry>();
                e->rec = j;
                jobs_[j.id] = std::move(e);
            } else if (!it->second->lease) {
                it->second->rec = j; // another instance's (or an ended) job: as kept
            } else {
                continue;
            }
            if (!finished(j.state)) live.push_back(j.id);
        }
        // Jobs another instance forgot (retention) go here too; those this one runs stay.
        for (auto it = jobs_.begin(); it != jobs_.end();)
            if (!ids.count(it->first) && !it->second->lease && !it->second->input)
                it = jobs_.erase(it);
            else
                ++it;
    }
    if (live.empty()) co_return;
    // A live job whose lease is free was left by an instance that died.
    std::vector<std::pair<std::string, std::unique_ptr<task_lease>>> orphans;
    for (const auto& id : live) {
        auto lease = co_await lead(id);
        if (lease && *lease) orphans.emplace_back(id, std::move(*lease));
    }
    if (orphans.empty()) co_return;
    // Read again under the leases: the job may have ended just before its lease was released.
    kept = co_await api_.core.in_pool(load_fn);
    for (auto& [id, lease] : orphans) {
        // A named copy: clang 14 cannot capture a structured binding in a lambda.
        const std::string& job_id = id;
        auto j = std::find_if(kept.begin(), kept.end(), [&](const job_record& r) { return r.id == job_id; });
        std::shared_ptr<entry> e;
        {
            std::lock_guard lk(mu_);
            if (auto it = jobs_.find(id); it != jobs_.end() && !it->second->lease) e = it->second;
        }
        if (j == kept.end() || finished(j->state) || !e) {
            drop_lease(std::move(lease));
            continue;
        }
        co_await take_over(std::move(e), std::move(*j), std::move(lease));
    }
}

asio::awaitable<void> job_runner::take_over(std::shared_ptr<entry> e, job_record stored,
                                            std::unique_ptr<task_lease> lease) {
    auto& svc = api_.core.view();
    const std::string id = stored.id;
    const std::string was = std::string(to_string(stored.state));
    {
        std::lock_guard lk(mu_);
        e->rec = std::move(stored);
    }
    job_record rec = e->rec;
    auto input_fn = [&svc, &id, &rec]() { return fitting(svc.load_job_input(id), rec); };
    auto in = co_await api_.core.in_pool(input_fn);
    if (in) {
        {
            std::lock_guard lk(mu_);
            e->input = std::make_shared<const job_input>(std::move(*in));
        }
        co_await recount(*e);
    } else {
        spdlog::error("job {}: its rows cannot be read ({}); it cannot be resumed", id, in.error().message);
    }
    {
        std::lock_guard lk(mu_);
        e->rec.state = in ? job_state::interrupted : job_state::failed;
        e->rec.finished_at = svc.now();
    }
    const principal submitter = submitter_of(e->rec);
    spdlog::warn("job {} was {} on an instance that stopped: {} of {} rows done; resuming it here as {}", id, was,
                 e->rec.done(), e->rec.total, submitter.user);
    auto entry_ = job_entry("batch_interrupted", e->rec, system_principal("job-takeover"));
    entry_.details["was"] = was;
    entry_.details["done_before"] = e->rec.done();
    auto audit_fn = [&svc, &entry_]() { return svc.audit_before(entry_); };
    if (auto a = co_await api_.core.in_pool(audit_fn); !a)
        spdlog::error("job {}: the takeover is not audited: {}", id, a.error().message);
    co_await save(*e);
    if (!in) {
        drop_lease(std::move(lease));
        co_return;
    }
    auto r = co_await requeue(e, submitter, std::move(lease), "batch_resume");
    if (!r) spdlog::error("job {}: not resumed after the takeover: {}", id, r.error().message);
}

asio::awaitable<result<job_input>> job_runner::input(const std::string& id) {
    std::shared_ptr<entry> e;
    {
        std::lock_guard lk(mu_);
        auto it = jobs_.find(id);
        if (it == jobs_.end()) co_return make_error(errc::not_found, "no such job");
        e = it->second;
    }
    std::shared_ptr<const job_input> held;
    {
        std::lock_guard lk(mu_);
        held = e->input;
    }
    if (held) co_return *held;
    auto& svc = api_.core.view();
    auto rec_now = get(id);
    if (!rec_now) co_return make_error(errc::not_found, "no such job");
    const job_record rec = std::move(*rec_now);
    auto input_fn = [&svc, &id, &rec]() { return fitting(svc.load_job_input(id), rec); };
    co_return co_await api_.core.in_pool(input_fn);
}

} // namespace certmate::net
