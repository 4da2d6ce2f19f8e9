// The contract's rules for reading metrics.json and correct.json, and argv building.
#include "test_support.hpp"

#include <genesis/launch/results.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace gl = genesis::launch;
using namespace genesis_test;
using ::testing::HasSubstr;

namespace {

struct Results : ::testing::Test {
    temp_dir dir;
    void metrics(const std::string& s) { write_file(dir / "metrics.json", s); }
    void correct(const std::string& s) { write_file(dir / "correct.json", s); }
    gl::evaluation_results read() { return gl::read_results(dir.path()); }
};

TEST_F(Results, WellFormed) {
    metrics(R"({"combined_score": 2.5, "public": {"x": 1}, "private": {"y": 2}, "text_feedback": ["a", "b"], "extra": 7})");
    correct(R"({"correct": true, "error": null})");
    auto r = read();
    EXPECT_TRUE(r.correct);
    EXPECT_EQ(r.error, "");
    EXPECT_DOUBLE_EQ(r.combined_score, 2.5);
    EXPECT_EQ(r.metrics.at("extra").as_int64(), 7);  // other keys pass through
    EXPECT_TRUE(r.warnings.empty());
    EXPECT_EQ(r.files.size(), 2u);
}

TEST_F(Results, MissingMetricsGivesEmptyObjectAndWarning) {
    correct(R"({"correct": true, "error": null})");
    auto r = read();
    EXPECT_TRUE(r.metrics.empty());
    EXPECT_DOUBLE_EQ(r.combined_score, 0.0);
    EXPECT_THAT(r.warnings, ::testing::ElementsAre(HasSubstr("metrics.json not found")));
    EXPECT_TRUE(r.correct);
}

TEST_F(Results, UnparsableMetricsGivesEmptyObjectAndWarning) {
    metrics("{not json");
    auto r = read();
    EXPECT_TRUE(r.metrics.empty());
    EXPECT_THAT(r.warnings, ::testing::Contains(HasSubstr("metrics.json is not valid JSON")));
}

TEST_F(Results, NonObjectMetrics) {
    metrics("[1, 2]");
    auto r = read();
    EXPECT_TRUE(r.metrics.empty());
    EXPECT_THAT(r.warnings, ::testing::Contains(HasSubstr("not a JSON object")));
}

TEST_F(Results, PythonNaNAndInfinityAreTolerated) {
    metrics(R"({"combined_score": 1.0, "public": {"loss": NaN, "hi": Infinity, "lo": -Infinity, "s": "NaN"}})");
    auto r = read();
    EXPECT_DOUBLE_EQ(r.combined_score, 1.0);
    auto& pub = r.metrics.at("public").as_object();
    EXPECT_TRUE(pub.at("loss").is_null());
    EXPECT_TRUE(pub.at("lo").is_null());
    EXPECT_EQ(pub.at("s").as_string(), "NaN");  // strings untouched
    EXPECT_THAT(r.warnings, ::testing::Contains(HasSubstr("NaN/Infinity")));
}

TEST_F(Results, MissingOrNonNumericScoreIsZero) {
    metrics(R"({"combined_score": "high"})");
    auto r = read();
    EXPECT_DOUBLE_EQ(r.combined_score, 0.0);
    EXPECT_THAT(r.warnings, ::testing::Contains(HasSubstr("combined_score is not a number")));
}

TEST_F(Results, IntegerScore) {
    metrics(R"({"combined_score": 3})");
    EXPECT_DOUBLE_EQ(read().combined_score, 3.0);
}

TEST_F(Results, MissingCorrectIsIncorrect) {
    auto r = read();
    EXPECT_FALSE(r.correct);
    EXPECT_THAT(r.error, HasSubstr("correct.json not found"));
}

TEST_F(Results, MalformedCorrectVariants) {
    correct("{\"correct\": tru");
    EXPECT_THAT(read().error, HasSubstr("correct.json is not valid JSON"));
    correct("true");
    EXPECT_THAT(read().error, HasSubstr("correct.json is not a JSON object"));
    correct(R"({"error": "x"})");
    EXPECT_THAT(read().error, HasSubstr("no 'correct' field"));
    correct(R"({"correct": "yes", "error": "kept"})");
    auto r = read();
    EXPECT_FALSE(r.correct);
    EXPECT_THAT(r.error, HasSubstr("'correct' must be true or false (got \"yes\")"));
    EXPECT_THAT(r.error, HasSubstr("kept"));
}

TEST_F(Results, IncorrectWithErrorAndNonStringError) {
    correct(R"({"correct": false, "error": "overlap"})");
    auto r = read();
    EXPECT_FALSE(r.correct);
    EXPECT_EQ(r.error, "overlap");
    correct(R"({"correct": false, "error": {"code": 3}})");
    EXPECT_EQ(read().error, R"({"code":3})");
}

TEST_F(Results, FilesAreListedRecursivelyAndSorted) {
    write_file(dir / "b.txt", "b");
    write_file(dir / "a/extra.npz", std::string("\0\1\2", 3));
    auto r = read();
    ASSERT_EQ(r.files.size(), 2u);
    EXPECT_EQ(r.files[0], dir / "a/extra.npz");
    EXPECT_EQ(r.files[1], dir / "b.txt");
}

TEST(EvaluatorArguments, ContractOrderAndValueRules) {
    boost::json::object extra{{"on", true},  {"off", false}, {"none", nullptr}, {"n", 5},
                              {"x", 0.5},    {"two", 2.0},   {"s", "a b"},     {"list", boost::json::array{1, 2}}};
    auto args = gl::evaluator_arguments("eval.py", "prog.py", "out", extra);
    EXPECT_EQ(args, (std::vector<std::string>{"eval.py", "--program_path", "prog.py", "--results_dir", "out", "--on",
                                              "--n", "5", "--x", "0.5", "--two", "2.0", "--s", "a b", "--list",
                                              "[1,2]"}));
}

}  // namespace
