#include "core/csv.hpp"

namespace certmate {

result<std::vector<csv_record>> parse_csv(std::string_view text, std::size_t max_records) {
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    std::vector<csv_record> out;
    csv_record rec;
    std::string field;
    std::size_t line = 1;
    bool quoted = false;        // inside a quoted field
    bool was_quoted = false;    // the current field was quoted (only a separator may follow)
    bool any = false;           // the current record has content (a field or a separator)
    std::size_t quote_line = 0; // where the open quoted field began
    auto at = [&](std::string what) {
        return make_error(errc::invalid_argument, "CSV line " + std::to_string(line) + ": " + what, "body");
    };
    auto too_wide = [&] { return at("more than " + std::to_string(csv_max_fields) + " fields in a record"); };
    // end_record refused: the record was too wide, or one record too many.
    auto over = [&] {
        return rec.fields.size() > csv_max_fields ? too_wide()
                                                  : at("more than " + std::to_string(max_records) + " records");
    };
    auto end_field = [&] {
        rec.fields.push_back(std::move(field));
        field.clear();
        was_quoted = false;
        return rec.fields.size() <= csv_max_fields;
    };
    auto end_record = [&]() -> bool {
        if (any) {
            (void)end_field(); // a last field over the limit is caught by the size check below
            if (rec.fields.size() > csv_max_fields) return false;
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
            if (!end_field()) return too_wide();
        } else if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
            if (!end_record()) return over();
            ++line;
        } else if (was_quoted) {
            return at("text after a closing quote (write a quote inside a quoted field as \"\")");
        } else if (c == '"') {
            if (!field.empty()) return at("a quote inside an unquoted field (quote the whole field)");
            if (!any) rec.line = line;
            any = true;
            quoted = true;
            quote_line = line;
        } else {
            if (!any) rec.line = line;
            any = true;
            field += c;
        }
    }
    if (quoted) {
        line = quote_line;
        return at("a quoted field is not closed");
    }
    if (!end_record()) return over();
    return out;
}

} // namespace certmate
