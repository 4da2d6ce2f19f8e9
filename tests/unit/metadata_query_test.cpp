// metadata_query_test.cpp - the `metadata` list filter: the JS SDK's three
// encoding layers (the server's reversal is the emulator's: tests/emulator/connect_wire_test.cpp).
#include "e2b/metadata_query.hpp"

#include <gtest/gtest.h>

namespace {

using genesis::launch::detail::e2b::encode_metadata_filter;
using genesis::launch::detail::e2b::metadata_query_parameter;
using metadata = std::map<std::string, std::string>;

TEST(MetadataQuery, EncodesTheSpecExampleLikeTheSdk) {
    metadata m{{"a b", "c&d=e/\xC3\xBC"}};  // "c&d=e/ü"
    EXPECT_EQ(encode_metadata_filter(m), "a%2520b=c%2526d%253De%252F%25C3%25BC");
    EXPECT_EQ(metadata_query_parameter(m), "metadata=a%252520b%3Dc%252526d%25253De%25252F%2525C3%2525BC");
}

TEST(MetadataQuery, PlainValuesPassThroughUnchanged) {
    EXPECT_EQ(encode_metadata_filter({{"job", "demo-42"}}), "job=demo-42");
    EXPECT_EQ(metadata_query_parameter({{"job", "demo-42"}}), "metadata=job%3Ddemo-42");
}

TEST(MetadataQuery, SeveralPairsAreJoinedWithAmpersands) {
    metadata m{{"job", "demo-42"}, {"owner", "cpp-team"}};
    EXPECT_EQ(encode_metadata_filter(m), "job=demo-42&owner=cpp-team");
    EXPECT_EQ(metadata_query_parameter(m), "metadata=job%3Ddemo-42%26owner%3Dcpp-team");
}

TEST(MetadataQuery, MatchesEncodeUriComponentAndUrlSearchParamsCharacterSets) {
    // Node: encodeURIComponent keeps !~*'() and URLSearchParams then escapes all but '*';
    // a space became %20 in the first layer, so no '+' appears.
    EXPECT_EQ(encode_metadata_filter({{"x!~*()'", "y z+%"}}), "x%21%7E*%28%29%27=y%2520z%252B%2525");
    EXPECT_EQ(metadata_query_parameter({{"x!~*()'", "y z+%"}}),
              "metadata=x%2521%257E*%2528%2529%2527%3Dy%252520z%25252B%252525");
}

}  // namespace
