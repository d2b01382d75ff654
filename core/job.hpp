// Batch jobs (docs/api.md "Batch jobs"): a create or revoke over many certificates, run in the
// background with its progress kept by the repository, so that a restart reports it
// `interrupted` with what it did, and a resume finishes it without doing anything twice.
//
// The rows of a job are fixed when it is accepted: each row's identifier is reserved then
// (given, or generated), and written with the rows (`job_input`) before the first certificate
// is made. Whether a row is done is therefore a fact of the store (the identifier exists; the
// certificate is revoked), which is how progress is recounted after a crash.
// Thread-safety: plain values.
#pragma once

#include "core/cert_record.hpp"
#include "core/clock.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace certmate {

enum class job_kind { create, revoke };
enum class job_state { queued, running, succeeded, failed, cancelled, interrupted };
std::string_view to_string(job_kind k) noexcept;
std::string_view to_string(job_state s) noexcept;
std::optional<job_kind> parse_job_kind(std::string_view s) noexcept;
std::optional<job_state> parse_job_state(std::string_view s) noexcept;
// Whether a job in this state is over (nothing runs and nothing will without a resume).
constexpr bool finished(job_state s) noexcept { return s != job_state::queued && s != job_state::running; }

// One row's outcome, in the job's `outcomes` string (one character per row).
enum class row_outcome : char { pending = '.', ok = 'o', failed = 'x' };

struct row_error {
    std::size_t row = 0; // 1-based, as the request numbered it (CSV: the data row, after the header)
    std::string field;   // the field the error names ("" for the row as a whole)
    std::string message;
    std::string identifier; // the row's identifier, when it has one
};

struct job_record {
    std::string id; // job-<16 hex>
    job_kind kind = job_kind::create;
    job_state state = job_state::queued;
    boost::json::object actor;        // who submitted it (actor_json)
    std::string owner;                // the rate/queue key of the submitter: one running job per owner
    api_role role = api_role::viewer; // the submitter's role: bounds resume and archive keys
    std::string request_sha256;       // of the request body as received
    std::string reason;               // revoke: the RFC 5280 reason name
    std::size_t total = 0;
    std::string outcomes; // row_outcome per row
    std::vector<row_error> errors;
    time_point created_at{};
    std::optional<time_point> started_at, finished_at;
    std::size_t resumes = 0;

    std::size_t count(row_outcome o) const;
    std::size_t done() const { return total - count(row_outcome::pending); }
};

// The rows as accepted: identifiers (revoke), or create bodies with their identifiers filled in.
struct job_input {
    std::vector<std::string> identifiers;  // per row
    std::vector<boost::json::object> rows; // create: per row, the create body (docs/api.md)
};

// The document GET /api/jobs/<id> answers and the repository keeps (without `outcomes` in the
// answer, with per-row errors from `errors_offset`, at most `errors_limit`).
boost::json::object to_json(const job_record& j, time_point now, std::size_t errors_offset = 0,
                            std::size_t errors_limit = 100);
// What the repository keeps: the document above with `outcomes` and every error.
boost::json::object job_to_storage_json(const job_record& j);
result<job_record> job_from_json(const boost::json::value& v);
boost::json::object to_json(const job_input& in);
result<job_input> job_input_from_json(const boost::json::value& v);

} // namespace certmate
