// core/csv.cpp against RFC 4180 section 2 (quotes, embedded commas and line breaks, CRLF) and
// what spreadsheets add (a UTF-8 BOM, a lone LF, a missing final line break), and its refusals:
// an unterminated quote, text after a closing quote, a quote inside an unquoted field, too many
// records or fields.
#define BOOST_TEST_MODULE test_csv
#include <boost/test/unit_test.hpp>

#include "core/csv.hpp"

using namespace certmate;

namespace {

using table = std::vector<std::vector<std::string>>;

table fields_of(std::string_view text, std::size_t max_records = 100) {
    auto r = parse_csv(text, max_records);
    BOOST_TEST_REQUIRE(r.has_value(), (r ? std::string() : r.error().message));
    table out;
    for (auto& rec : *r) out.push_back(rec.fields);
    return out;
}

std::string error_of(std::string_view text, std::size_t max_records = 100) {
    auto r = parse_csv(text, max_records);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().code == errc::invalid_argument);
    return r.error().message;
}

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

} // namespace

BOOST_AUTO_TEST_CASE(plain_records_with_crlf_lf_and_no_final_line_break) {
    BOOST_TEST((fields_of("a,b\r\nc,d\r\n") == table{{"a", "b"}, {"c", "d"}}));
    BOOST_TEST((fields_of("a,b\nc,d") == table{{"a", "b"}, {"c", "d"}}));
    BOOST_TEST((fields_of("a,b\rc,d\r") == table{{"a", "b"}, {"c", "d"}}));
    BOOST_TEST(fields_of("").empty());
    BOOST_TEST(fields_of("\r\n\r\n").empty());
}

BOOST_AUTO_TEST_CASE(empty_fields_are_kept_and_empty_lines_are_not_records) {
    BOOST_TEST((fields_of("a,,c\n") == table{{"a", "", "c"}}));
    BOOST_TEST((fields_of(",\n") == table{{"", ""}}));
    BOOST_TEST((fields_of("a,\n") == table{{"a", ""}}));
    BOOST_TEST((fields_of("a\n\n\nb\n") == table{{"a"}, {"b"}}));
    BOOST_TEST((fields_of("\"\"\n") == table{{""}})); // a quoted empty field is a record
    BOOST_TEST((fields_of("\"\",\"\"\n") == table{{"", ""}}));
}

BOOST_AUTO_TEST_CASE(quoted_fields_hold_commas_quotes_and_line_breaks) {
    BOOST_TEST((fields_of("\"Acme, Inc.\",x\n") == table{{"Acme, Inc.", "x"}}));
    BOOST_TEST((fields_of("\"say \"\"hi\"\"\"\n") == table{{"say \"hi\""}}));
    BOOST_TEST((fields_of("\"\"\"\"\n") == table{{"\""}}));
    // RFC 4180 2.6: line breaks inside quotes are data, as written (CRLF stays CRLF).
    BOOST_TEST((fields_of("\"l1\r\nl2\",b\r\nc,d\r\n") == table{{"l1\r\nl2", "b"}, {"c", "d"}}));
    BOOST_TEST((fields_of("\"-----BEGIN\nX\n-----END\n\"\n") == table{{"-----BEGIN\nX\n-----END\n"}}));
    // Spaces are data (RFC 4180 2.4), outside quotes too.
    BOOST_TEST((fields_of(" a , b \n") == table{{" a ", " b "}}));
}

BOOST_AUTO_TEST_CASE(records_name_the_line_they_start_on) {
    auto r = parse_csv("h1,h2\n\"a\nb\",c\n\nd,e\n", 10);
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST_REQUIRE(r->size() == 3u);
    BOOST_TEST((*r)[0].line == 1u);
    BOOST_TEST((*r)[1].line == 2u);
    BOOST_TEST((*r)[2].line == 5u);
}

BOOST_AUTO_TEST_CASE(a_bom_is_skipped_only_at_the_start) {
    BOOST_TEST((fields_of("\xEF\xBB\xBF"
                          "a,b\r\n") == table{{"a", "b"}}));
    BOOST_TEST((fields_of("\xEF\xBB\xBF\"q\"\n") == table{{"q"}}));
    BOOST_TEST((fields_of("a,\xEF\xBB\xBF"
                          "b\n") == table{{"a", "\xEF\xBB\xBF"
                                                "b"}}));
}

BOOST_AUTO_TEST_CASE(malformed_quotes_are_refused_with_the_line) {
    // Unterminated: named at the line where the field opened.
    auto m = error_of("a,b\n\"open\n\nstill open");
    BOOST_TEST(has(m, "not closed"), m);
    BOOST_TEST(has(m, "line 2"), m);
    BOOST_TEST(has(error_of("\""), "not closed"));
    // Text after a closing quote.
    m = error_of("a\n\"x\"y,z\n");
    BOOST_TEST(has(m, "after a closing quote"), m);
    BOOST_TEST(has(m, "line 2"), m);
    BOOST_TEST(has(error_of("\"x\" \n"), "after a closing quote"));
    // A quote inside an unquoted field.
    m = error_of("ab\"c\n");
    BOOST_TEST(has(m, "inside an unquoted field"), m);
}

BOOST_AUTO_TEST_CASE(max_records_counts_records_not_lines) {
    BOOST_TEST(fields_of("a\nb\nc\n", 3).size() == 3u);
    BOOST_TEST(fields_of("a\nb\nc", 3).size() == 3u);
    BOOST_TEST(fields_of("a\n\n\n\nb\n", 2).size() == 2u);
    BOOST_TEST(fields_of("\"a\nb\nc\nd\"\n", 1).size() == 1u);
    BOOST_TEST(has(error_of("a\nb\nc\nd\n", 3), "more than 3 records"));
    BOOST_TEST(has(error_of("a\nb\nc\nd", 3), "more than 3 records"));
    // The count stops the parse: a huge input over the limit is not read to its end first.
    std::string many;
    for (int i = 0; i < 100000; ++i) many += "x\n";
    many += "\"unterminated";
    BOOST_TEST(has(error_of(many, 10), "more than 10 records"));
}

BOOST_AUTO_TEST_CASE(a_record_of_too_many_fields_is_refused) {
    // A line of commas must not become millions of strings: fields per record are bounded.
    const std::string commas(200000, ',');
    auto m = error_of(commas + "\n", 10);
    BOOST_TEST(has(m, "fields"), m);
    BOOST_TEST(fields_of(std::string(csv_max_fields - 1, ',') + "\n").at(0).size() == csv_max_fields);
}
