// metadata_query_test.cpp - the `metadata` list filter: the JS SDK's three
// encoding layers and the E2B server's reversal (spec §2.7).
#include "e2b/metadata_query.hpp"

#include <gtest/gtest.h>

namespace {

using genesis::launch::detail::e2b::decode_metadata_filter;
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

TEST(MetadataQuery, DecodesWhatTheSdkSends) {
    auto decoded = decode_metadata_filter("a%252520b%3Dc%252526d%25253De%25252F%2525C3%2525BC");
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, (metadata{{"a b", "c&d=e/\xC3\xBC"}}));
    EXPECT_EQ(decode_metadata_filter("job%3Ddemo-42"), (metadata{{"job", "demo-42"}}));
    // Unencoded plain text is accepted too (every layer is a no-op for it).
    EXPECT_EQ(decode_metadata_filter("job=demo-42"), (metadata{{"job", "demo-42"}}));
    // A value may be empty.
    EXPECT_EQ(decode_metadata_filter("job%3D"), (metadata{{"job", ""}}));
}

TEST(MetadataQuery, RoundTrips) {
    for (const auto& m : {metadata{{"job", "demo-42"}}, metadata{{"a b", "c&d=e/\xC3\xBC"}, {"k", "v"}},
                          metadata{{"sym", "!#$&'()*+,/:;=?@[]~%^ \t\"<>\\{}|`"}},
                          metadata{{"utf8-\xE6\x97\xA5\xE6\x9C\xAC", "\xF0\x9F\x98\x80"}}}) {
        auto value = metadata_query_parameter(m).substr(std::string("metadata=").size());
        auto decoded = decode_metadata_filter(value);
        ASSERT_TRUE(decoded) << value;
        EXPECT_EQ(*decoded, m) << value;
    }
}

TEST(MetadataQuery, PlusIsASpaceInEveryLayerLikeGo) {
    // Go's url.QueryUnescape turns '+' into a space.
    EXPECT_EQ(decode_metadata_filter("a+b%3Dc"), (metadata{{"a b", "c"}}));
}

TEST(MetadataQuery, RejectsMalformedInput) {
    EXPECT_FALSE(decode_metadata_filter(""));              // one pair without '='
    EXPECT_FALSE(decode_metadata_filter("job"));           // no '='
    EXPECT_FALSE(decode_metadata_filter("a%3Db%3Dc"));     // "a=b=c": three parts
    EXPECT_FALSE(decode_metadata_filter("a%3Db%26"));      // trailing '&' gives an empty pair
    EXPECT_FALSE(decode_metadata_filter("%zz%3Db"));       // bad escape in the first layer
    EXPECT_FALSE(decode_metadata_filter("a%25zz%3Db"));    // bad escape in the second layer
    EXPECT_FALSE(decode_metadata_filter("a%2525zz%3Db"));  // bad escape in a key
    EXPECT_FALSE(decode_metadata_filter("a%3D%2525zz"));   // bad escape in a value
    EXPECT_FALSE(decode_metadata_filter("a%3Db%"));        // truncated escape
}

}  // namespace
