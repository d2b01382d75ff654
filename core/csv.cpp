#include "core/csv.hpp"

namespace certmate {

result<std::vector<csv_record>> parse_csv(std::string_view text, std::size_t max_records) {
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    std::vector<csv_record> out;
    csv_record rec;
    std::string field;
    std::size_t line = 1;
    bool quoted = false;     // inside a quoted field
    bool was_quoted = false; // the current field was quoted (only a separator may follow)
    bool any = false;        // the current record has content (a field or a separator)
    auto at = [&](std::string what) {
        return make_error(errc::invalid_argument, "CSV line " + std::to_string(line) + ": " + what, "body");
    };
    auto end_field = [&] {
        rec.fields.push_back(std::move(field));
        field.clear();
        was_quoted = false;
    };
    auto end_record = [&]() -> bool {
        if (any) {
            end_field();
            out.push_back(std::move(rec));
        }
        rec = csv_record{};
        any = false;
        return out.size() <= max_records;
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quoted) {
            if (c == '"') {
                if (i + 1 < text.size() && text[i + 1] == '"') {
                    field += '"';
                    ++i;
                } else {
                    quoted = false;
                    was_quoted = true;
                }
            } else {
                if (c == '\n') ++line;
                field += c;
            }
            continue;
        }
        if (c == ',') {
            if (!any) rec.line = line;
            any = true;
            end_field();
        } else if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
            if (!end_record()) return at("more than " + std::to_string(max_records) + " records");
            ++line;
        } else if (was_quoted) {
            return at("text after a closing quote (write a quote inside a quoted field as \"\")");
        } else if (c == '"') {
            if (!field.empty()) return at("a quote inside an unquoted field (quote the whole field)");
            if (!any) rec.line = line;
            any = true;
            quoted = true;
        } else {
            if (!any) rec.line = line;
            any = true;
            field += c;
        }
    }
    if (quoted) return at("a quoted field is not closed");
    if (!end_record()) return at("more than " + std::to_string(max_records) + " records");
    return out;
}

} // namespace certmate
