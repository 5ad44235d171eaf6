#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "control/ike/codec.h"
#include "control/ike/fragments.h"
#include "control/ike/keymat.h"
#include "control/ike/proposal.h"

using namespace nimbus;
using namespace nimbus::ike;

namespace {

std::vector<uint8_t> seq(uint8_t from, size_t n) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; i++) v[i] = uint8_t(from + i);
    return v;
}

Header sa_init_header() {
    Header h;
    h.spi_i = 0x8899aabbccddeeffull;
    h.exchange = IKE_SA_INIT;
    h.flags = kFlagInitiator;
    return h;
}

std::vector<Payload> auth_payloads() {
    return {
        make_id(true, ID_DER_ASN1_DN, std::vector<uint8_t>(90, 0x31)),
        make_cert(CERT_X509_SIGNATURE, std::vector<uint8_t>(900, 0xce)),
        make_auth(AUTH_DIGITAL_SIGNATURE, std::vector<uint8_t>(120, 0x5a)),
        make_sa(SaPayload{{*parse_proposal("aes256gcm16-esn", PROTO_ESP, nullptr)}}),
        make_ts(true, {TrafficSelector::from_prefix(*Prefix::parse("10.16.1.0/24"))}),
        make_ts(false, {TrafficSelector::from_prefix(*Prefix::parse("10.0.0.0/8"))}),
        make_notify(N_MOBIKE_SUPPORTED),
    };
}

}  // namespace

TEST_CASE("ike: IKE_SA_INIT message builds with correct chaining and parses back", "[ike]") {
    auto sa = *parse_proposal("aes256gcm16-prfsha256-x25519", PROTO_IKE, nullptr);
    std::vector<Payload> payloads = {
        make_sa(SaPayload{{sa}}),
        make_ke(CURVE25519, std::vector<uint8_t>(32, 0x42)),
        make_nonce(std::vector<uint8_t>(32, 0x4e)),
        make_notify(N_NAT_DETECTION_SOURCE_IP, std::vector<uint8_t>(20, 1)),
        make_notify(N_NAT_DETECTION_DESTINATION_IP, std::vector<uint8_t>(20, 2)),
        make_notify(N_IKEV2_FRAGMENTATION_SUPPORTED),
        make_notify(N_SIGNATURE_HASH_ALGORITHMS, {0, 2, 0, 3, 0, 4}),
    };
    MessageBuilder b(sa_init_header());
    for (auto& p : payloads) b.add(p);
    auto wire = b.build();
    REQUIRE(wire);

    // Walk the Next Payload fields by hand: header → SA → KE → Nonce → N...
    CHECK((*wire)[16] == PT_SA);
    size_t off = kHeaderLen;
    std::vector<uint8_t> nexts;
    while (off < wire->size()) {
        nexts.push_back((*wire)[off]);
        off += size_t((*wire)[off + 2]) << 8 | (*wire)[off + 3];
    }
    CHECK(off == wire->size());
    CHECK(nexts == std::vector<uint8_t>{PT_KE, PT_NONCE, PT_NOTIFY, PT_NOTIFY, PT_NOTIFY, PT_NOTIFY, PT_NONE});

    Message m;
    auto e = parse_message(*wire, m);
    INFO(e.str());
    REQUIRE(e.ok());
    CHECK(m.header.length == wire->size());
    CHECK(m.header.initiator());
    CHECK_FALSE(m.header.response());
    CHECK(m.payloads == payloads);
    CHECK(m.get<KePayload>(PT_KE)->group == CURVE25519);
    CHECK(m.get<SaPayload>(PT_SA)->proposals.at(0) == sa);
    CHECK(m.notifies().size() == 4);
    CHECK(m.all(PT_NOTIFY).size() == 4);
    CHECK(m.all(PT_KE).size() == 1);
    CHECK(m.all(PT_CERT).empty());
    CHECK(m.notify(N_NAT_DETECTION_DESTINATION_IP)->data == std::vector<uint8_t>(20, 2));
    CHECK_FALSE(m.notify(N_COOKIE));
    CHECK_FALSE(m.sk());

    // build() refuses protected payloads; an empty message is just a header.
    CHECK_FALSE(MessageBuilder(sa_init_header()).add_protected(make_notify(N_COOKIE)).build());
    auto empty = MessageBuilder(sa_init_header()).build();
    REQUIRE(empty);
    CHECK(empty->size() == kHeaderLen);
    CHECK((*empty)[16] == PT_NONE);
}

TEST_CASE("ike: IKE_AUTH with clear and protected payloads", "[ike]") {
    auto keymat = seq(3, 36);
    auto enc = SkCipher::create(ENCR_AES_GCM_16, 256, keymat);
    auto dec = SkCipher::create(ENCR_AES_GCM_16, 256, keymat);
    Header h = sa_init_header();
    h.exchange = IKE_AUTH;
    h.spi_r = 0x0102030405060708ull;
    h.message_id = 1;
    MessageBuilder b(h);
    // A clear Vendor ID ahead of SK (unusual but legal: SK just has to be last).
    b.add(make_vendor({0xca, 0xfe}));
    for (auto& p : auth_payloads()) b.add_protected(p);
    auto wire = b.build(*enc);
    REQUIRE(wire);

    Message m;
    REQUIRE(parse_message(*wire, m).ok());
    REQUIRE(m.payloads.size() == 2);
    CHECK(m.payloads[0].type == PT_VENDOR);
    CHECK(wire->at(kHeaderLen) == PT_SK);   // the Vendor ID's Next Payload
    REQUIRE(m.sk());
    CHECK(m.sk()->offset == kHeaderLen + 6);
    CHECK(m.sk()->first_inner == PT_IDI);
    CHECK_FALSE(m.find(PT_AUTH));           // still sealed
    REQUIRE(open_message(*wire, m, *dec).ok());
    CHECK(m.inner == auth_payloads());
    CHECK(m.get<AuthPayload>(PT_AUTH)->method == AUTH_DIGITAL_SIGNATURE);
    CHECK(m.notify(N_MOBIKE_SUPPORTED));
    CHECK(m.get<TsPayload>(PT_TSR)->selectors.at(0).end.str() == "10.255.255.255");
}

TEST_CASE("ike: RFC 7383 fragments: build, open, reassemble in any order", "[ike]") {
    auto keymat = seq(9, 36);
    auto enc = SkCipher::create(ENCR_CHACHA20_POLY1305, 0, keymat);
    auto dec = SkCipher::create(ENCR_CHACHA20_POLY1305, 0, keymat);
    Header h = sa_init_header();
    h.exchange = IKE_AUTH;
    h.message_id = 1;
    MessageBuilder b(h);
    for (auto& p : auth_payloads()) b.add_protected(p);
    auto inner = b.inner_octets();
    REQUIRE(inner);
    const size_t max = 300;
    auto frags = b.build_fragments(*enc, max);
    REQUIRE(frags);
    size_t per = max - (kHeaderLen + 8 + sk_overhead());
    CHECK(frags->size() == (inner->size() + per - 1) / per);
    for (auto& f : *frags) CHECK(f.size() <= max);

    std::vector<size_t> order(frags->size());
    for (size_t i = 0; i < order.size(); i++) order[i] = i;
    std::mt19937 g(7383);
    std::shuffle(order.begin(), order.end(), g);

    FragmentReassembly re;
    FragmentReassembly::Result last = FragmentReassembly::Result::Incomplete;
    for (size_t n = 0; n < order.size(); n++) {
        auto& dgram = (*frags)[order[n]];
        Message m;
        REQUIRE(parse_message(dgram, m).ok());
        CHECK(m.header.next_payload == PT_SKF);
        const SkfPayload* f = m.skf();
        REQUIRE(f);
        CHECK(f->number == order[n] + 1);
        CHECK(f->total == frags->size());
        CHECK(f->first_inner == (f->number == 1 ? PT_IDI : PT_NONE));
        std::vector<uint8_t> chunk;
        REQUIRE(open_fragment(dgram, m, *dec, chunk).ok());
        last = re.add(*f, chunk);
        if (n + 1 < order.size()) {
            CHECK(last == FragmentReassembly::Result::Incomplete);
            CHECK(re.add(*f, chunk) == FragmentReassembly::Result::Duplicate);
        }
    }
    CHECK(last == FragmentReassembly::Result::Complete);
    uint8_t first = 0;
    auto joined = re.take(&first);
    CHECK(joined == *inner);
    CHECK(first == PT_IDI);
    Message whole;
    whole.header = h;
    REQUIRE(parse_inner(joined, first, whole).ok());
    CHECK(whole.inner == auth_payloads());

    // A tampered fragment does not open (the AAD covers the SKF header's
    // Fragment Number and Total Fragments).
    auto bad = (*frags)[0];
    bad[kHeaderLen + 5] ^= 1;   // Fragment Number low octet: 1 → 0 is refused at parse
    Message mb;
    CHECK_FALSE(parse_message(bad, mb).ok());
    bad = (*frags)[1];
    bad[kHeaderLen + 7] ^= 0x10;   // Total Fragments changed, still valid syntax
    REQUIRE(parse_message(bad, mb).ok());
    std::vector<uint8_t> chunk;
    CHECK(open_fragment(bad, mb, *dec, chunk).code == ParseCode::Decrypt);

    // Too small to carry anything.
    CHECK_FALSE(b.build_fragments(*enc, kHeaderLen + 8 + sk_overhead()));
    // Clear payloads cannot be fragmented.
    CHECK_FALSE(MessageBuilder(h).add(make_vendor({1})).build_fragments(*enc, 1000));
}

TEST_CASE("ike: fragment reassembly bounds and re-fragmentation (RFC 7383 §2.6)", "[ike]") {
    FragmentReassembly re(4, 100);
    auto f = [](uint16_t n, uint16_t t) {
        SkfPayload s;
        s.number = n;
        s.total = t;
        s.first_inner = n == 1 ? PT_IDI : PT_NONE;
        return s;
    };
    CHECK(re.add(f(1, 3), {1}) == FragmentReassembly::Result::Incomplete);
    CHECK(re.add(f(2, 3), {2}) == FragmentReassembly::Result::Incomplete);
    // The sender re-fragmented into more pieces: start over.
    CHECK(re.add(f(1, 4), {9}) == FragmentReassembly::Result::Incomplete);
    CHECK(re.total() == 4);
    // A leftover of the old set is stale.
    CHECK(re.add(f(3, 3), {3}) == FragmentReassembly::Result::Stale);
    CHECK(re.add(f(2, 4), {8}) == FragmentReassembly::Result::Incomplete);
    CHECK(re.add(f(3, 4), {7}) == FragmentReassembly::Result::Incomplete);
    CHECK(re.add(f(4, 4), {6}) == FragmentReassembly::Result::Complete);
    uint8_t first = 0;
    CHECK(re.take(&first) == std::vector<uint8_t>{9, 8, 7, 6});
    CHECK(first == PT_IDI);
    CHECK(re.total() == 0);
    // Too many fragments, too many bytes.
    CHECK(re.add(f(1, 5), {1}) == FragmentReassembly::Result::Refused);
    CHECK(re.add(f(1, 2), std::vector<uint8_t>(60, 0)) == FragmentReassembly::Result::Incomplete);
    CHECK(re.add(f(2, 2), std::vector<uint8_t>(60, 0)) == FragmentReassembly::Result::Refused);
    CHECK(re.total() == 0);
    // take() before completion gives nothing.
    CHECK(re.add(f(2, 2), {1}) == FragmentReassembly::Result::Incomplete);
    CHECK(re.take(&first).empty());
}

TEST_CASE("ike: message-level errors: critical unknown payload, nested SK, bad inner chain", "[ike]") {
    // Unknown critical payload in the clear: UNSUPPORTED_CRITICAL_PAYLOAD
    // naming type 99.
    ByteWriter w;
    Header h = sa_init_header();
    h.next_payload = 99;
    h.write(w);
    w.u8(PT_NONE);
    w.u8(kCriticalBit);
    w.u16(4);
    w.put_u32_at(24, uint32_t(w.size()));
    Message m;
    auto e = parse_message(w.data(), m);
    CHECK(e.code == ParseCode::UnsupportedCritical);
    CHECK(e.notify() == N_UNSUPPORTED_CRITICAL_PAYLOAD);
    CHECK(e.payload == 99);
    Payload reply = error_notify(e);
    CHECK(reply.as<NotifyPayload>()->type == N_UNSUPPORTED_CRITICAL_PAYLOAD);
    CHECK(reply.as<NotifyPayload>()->data == std::vector<uint8_t>{99});
    ParseError syntax = ParseError::fail(ParseCode::BadBody, PT_SA, 40, "x");
    CHECK(error_notify(syntax).as<NotifyPayload>()->type == N_INVALID_SYNTAX);
    CHECK(error_notify(syntax).as<NotifyPayload>()->data.empty());

    // The same without the C bit parses, keeping the payload as opaque.
    w.data()[kHeaderLen + 1] = 0;
    REQUIRE(parse_message(w.data(), m).ok());
    REQUIRE(m.payloads.size() == 1);
    CHECK(m.payloads[0].type == 99);
    CHECK(m.payloads[0].as<OpaquePayload>());

    // Inner chains: an SK inside SK, or a malformed inner payload, fail
    // after decryption with the inner error.
    std::vector<uint8_t> nested = {PT_NONE, 0, 0, 4};
    CHECK(parse_inner(nested, PT_SK, m).code == ParseCode::NestedSk);
    CHECK_FALSE(m.opened);
    std::vector<uint8_t> short_nonce = {PT_NONE, 0, 0, 6, 1, 2};
    CHECK(parse_inner(short_nonce, PT_NONCE, m).code == ParseCode::BadBody);
    CHECK(m.inner.empty());

    // open_message without an SK payload.
    auto keymat = seq(1, 20);
    auto c = SkCipher::create(ENCR_AES_GCM_16, 128, keymat);
    auto plain = *MessageBuilder(sa_init_header()).add(make_nonce(std::vector<uint8_t>(16, 1))).build();
    REQUIRE(parse_message(plain, m).ok());
    CHECK(open_message(plain, m, *c).code == ParseCode::Decrypt);
}

TEST_CASE("ike: builder refuses messages whose fields overflow", "[ike]") {
    auto c = SkCipher::create(ENCR_AES_GCM_16, 128, seq(1, 20));
    MessageBuilder b(sa_init_header());
    b.add_protected(make_vendor(std::vector<uint8_t>(65520, 0)));
    // The SK payload would exceed 65535 octets...
    CHECK_FALSE(b.build(*c));
    // ...but the message fragments fine.
    auto frags = b.build_fragments(*c, 1280);
    REQUIRE(frags);
    size_t per = 1280 - (kHeaderLen + 8 + sk_overhead());
    CHECK(frags->size() == (65524 + per - 1) / per);
    // One octet less and it fits a single SK payload exactly at the limit.
    MessageBuilder fits(sa_init_header());
    fits.add_protected(make_vendor(std::vector<uint8_t>(65535 - 4 - sk_overhead() - 4, 0)));
    auto one = fits.build(*c);
    REQUIRE(one);
    CHECK(one->size() == kHeaderLen + 65535);
}
