// Batch jobs in the server (docs/api.md "Batch jobs"): the registry of kept jobs, the queue, and
// the execution of a job's rows through the same staged create/revoke path as single requests.
// At most `max_running` jobs run at once and one per owner (the token or certificate that
// submitted it); the rest wait in the queue. A running job holds at most `parallel_rows` rows in
// flight, so interactive requests keep the rest of the pool. Progress is kept by the repository
// at least every second; a job found running or queued at start-up is reported `interrupted`
// with its rows recounted from the store (core/job.hpp), and a resume finishes it.
//
// Several instances on one store (docs/postgresql.md "Several instances"): a job queued or
// running here holds the store's lease "job:<id>" (cert_repository::try_lead) from its submit or
// resume to its end, so the lease is free exactly when no live instance runs it (a killed one's
// goes with its database session). A job kept live whose lease is free was left by a dead
// instance: recover() reports it interrupted; refresh() (every few seconds on a shared store)
// takes it over: interrupted, audited, and resumed here as its submitter. Jobs another instance
// runs are shown as that instance keeps them.
// Thread-safety: every member is safe from any thread (one mutex over the registry).
#pragma once

#include "core/job.hpp"
#include "core/service.hpp"
#include "net/http.hpp"
#include "net/options.hpp"

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace certmate::net {

struct api_state;

class job_runner {
public:
    explicit job_runner(api_state& api) : api_(api) {}

    // Loads the kept jobs; those left running or queued become `interrupted`, recounted. Once,
    // before the server listens.
    asio::awaitable<void> recover();

    // Keeps `in` and the queued job `j` (after its audit entry `batch_create`/`batch_revoke`),
    // queues it and starts what may start. `who` is the submitter (its rows run as it).
    asio::awaitable<result<job_record>> submit(job_record j, job_input in, principal who);
    std::optional<job_record> get(const std::string& id) const;
    std::vector<job_record> list() const; // newest first
    // Cancels a queued or running job (rows done stay done); errc::conflict when it is over.
    asio::awaitable<result<job_record>> cancel(const std::string& id, const principal& who);
    // Resumes an interrupted (or cancelled) job as `who`: rows the store shows done are counted,
    // the rest run.
    asio::awaitable<result<job_record>> resume(const std::string& id, principal who);
    std::map<std::string, std::size_t> counts_by_state() const;
    // A shared store: takes the kept documents of the jobs this instance does not run, and takes
    // over those left live by an instance that died (see above). Nothing on a store only this
    // process writes.
    asio::awaitable<void> refresh();
    // Whether `owner` may submit now (the queue has room).
    bool queue_full() const;
    // The rows the job was accepted with.
    asio::awaitable<result<job_input>> input(const std::string& id);

private:
    struct entry {
        job_record rec; // guarded by mu_
        principal who;  // the rows run as this principal
        std::atomic<bool> cancel{false};
        std::shared_ptr<const job_input> input; // while queued or running (guarded by mu_); else on disk
        std::chrono::steady_clock::time_point last_save{};
        // The store's "job:<id>" lease while the job is queued or running here (guarded by mu_);
        // none: the job is over, or another instance runs it. Released on the pool (drop_lease).
        std::unique_ptr<task_lease> lease;
    };
    // The lease on running job `id` [pool]: nullptr while another instance holds it.
    asio::awaitable<result<std::unique_ptr<task_lease>>> lead(const std::string& id);
    void drop_lease(std::unique_ptr<task_lease> l); // released on the pool [any thread]
    // Queues `e` as `who` with `lease` held (resume and takeover); errc::conflict unless it is
    // interrupted or cancelled. The lease is released on failure.
    asio::awaitable<result<job_record>> requeue(std::shared_ptr<entry> e, principal who,
                                                std::unique_ptr<task_lease> lease, std::string operation);
    asio::awaitable<void> take_over(std::shared_ptr<entry> e, job_record stored, std::unique_ptr<task_lease> lease);
    void schedule();                                     // starts what may start [any thread]
    asio::awaitable<void> run(std::shared_ptr<entry> e); // one job, to its end
    asio::awaitable<void> run_rows(std::shared_ptr<entry> e, std::size_t index_from);
    asio::awaitable<bool> run_row(entry& e, std::size_t row);
    asio::awaitable<result<void>> save(entry& e); // the document, on the pool
    asio::awaitable<void> recount(entry& e);      // pending rows the store shows done (a shared store: read there)
    void forget_old();                            // keep_finished
    unsigned parallel_rows() const;

    api_state& api_;
    mutable std::mutex mu_;
    std::map<std::string, std::shared_ptr<entry>> jobs_;
    std::vector<std::string> queue_; // job ids, oldest first
    unsigned running_ = 0;
};

} // namespace certmate::net
