//! RFC 9421 appendix B: the example keys (B.1) and the signed examples (B.2) that use this build's algorithms.

use super::*;
use crate::secret::Secret;
use http_body_util::Full;
use ring::signature::{ECDSA_P256_SHA256_FIXED, ED25519, UnparsedPublicKey};

/// B.1.5, `test-shared-secret` (base64 in the RFC; the key is its bytes).
const SHARED_SECRET_B64: &str =
    "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==";

/// B.1.4, `test-key-ed25519`.
const ED25519_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
";
/// B.1.4's public key, the raw 32 bytes of its `x` (base64url in the RFC's JWK).
const ED25519_PUBLIC: &str = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs";

/// B.1.3, `test-key-ecc-p256`. The RFC prints it as SEC1 (`BEGIN EC PRIVATE
/// KEY`); this is the same key re-wrapped as PKCS#8 (`openssl pkcs8 -topk8
/// -nocrypt`), the form sidekey reads.
const P256_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgUpuF81l+kOxbjf7T
4mNSv0r5tN67Gim7rnf6EFpcYDuhRANCAASohVhlUsKs9kcYeM/XsJNbT/4P0t/D
QSSOoXvEHgWK8DHOJzfS0wzgYX6FHoPGHvVnnRUYZ2V2SQNdkKdM2ehd
-----END PRIVATE KEY-----
";
/// B.1.3's public point (uncompressed), from its SubjectPublicKeyInfo.
const P256_PUBLIC_SPKI_B64: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lfw0EkjqF7xB4FivAxzic30tMM4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==";

const CREATED: u64 = 1618884473;

/// B.2's request: `POST /foo?param=Value&Pet=dog` to example.com.
fn b2_request() -> Request<Full<bytes::Bytes>> {
    Request::post("/foo?param=Value&Pet=dog")
        .header("host", "example.com")
        .header("date", "Tue, 20 Apr 2021 02:07:55 GMT")
        .header("content-type", "application/json")
        .header(
            "content-digest",
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        )
        .header("content-length", "18")
        .body(Full::new(bytes::Bytes::from_static(b"{\"hello\": \"world\"}")))
        .unwrap()
}

fn signer(alg: &str, key_id: &str, components: &[&str], key: &str, label: &str) -> Signer {
    let components: Vec<String> = components.iter().map(|s| s.to_string()).collect();
    let spec = HttpSignatureSpec::new(Settings {
        key_id,
        alg,
        components: &components,
        expires: None,
        nonce: false,
        label: Some(label),
        tag: None,
        max_signed_body: None,
        key_encoding: (alg == "hmac-sha256").then_some("base64"),
    })
    .unwrap();
    let key = SigningKey::load(spec.alg, &Secret::new(key).unwrap(), spec.hmac_base64).unwrap();
    Signer { spec, key }
}

const RFC_MOMENT: Moment = Moment {
    created: CREATED,
    nonce: None,
    alg_param: false,
};

fn header(req: &Request<Full<bytes::Bytes>>, name: &str) -> String {
    req.headers()[name].to_str().unwrap().to_owned()
}

#[test]
fn b2_5_hmac_sha256_matches_the_rfc() {
    // The RFC's shared secret is 64 random bytes, given in base64.
    let s = signer(
        "hmac-sha256",
        "test-shared-secret",
        &["date", "@authority", "content-type"],
        SHARED_SECRET_B64,
        "sig-b25",
    );
    let mut req = b2_request();
    s.sign_at(&mut req, None, &RFC_MOMENT).unwrap();
    assert_eq!(
        header(&req, "signature-input"),
        r#"sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret""#
    );
    assert_eq!(
        header(&req, "signature"),
        "sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:"
    );
}

#[test]
fn b2_6_ed25519_matches_the_rfc() {
    let s = signer(
        "ed25519",
        "test-key-ed25519",
        &[
            "date",
            "@method",
            "@path",
            "@authority",
            "content-type",
            "content-length",
        ],
        ED25519_KEY,
        "sig-b26",
    );
    let mut req = b2_request();
    s.sign_at(&mut req, None, &RFC_MOMENT).unwrap();
    assert_eq!(
        header(&req, "signature-input"),
        r#"sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#
    );
    assert_eq!(
        header(&req, "signature"),
        "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
    );
    // And the signature verifies with B.1.4's public key.
    let public = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(ED25519_PUBLIC)
        .unwrap();
    let sig = B64
        .decode("wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==")
        .unwrap();
    let base = "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\"@method\": POST\n\"@path\": /foo\n\"@authority\": example.com\n\"content-type\": application/json\n\"content-length\": 18\n\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";
    UnparsedPublicKey::new(&ED25519, public)
        .verify(base.as_bytes(), &sig)
        .unwrap();
}

fn p256_public() -> Vec<u8> {
    let spki = B64.decode(P256_PUBLIC_SPKI_B64).unwrap();
    // The last 65 bytes of a P-256 SubjectPublicKeyInfo are the uncompressed point.
    spki[spki.len() - 65..].to_vec()
}

#[test]
fn b2_4_ecdsa_p256_rfc_signature_verifies_with_b1_3_key() {
    // B.2.4 signs a response (`@status`), which a request signer never covers:
    // its published signature is checked against its published base, which
    // pins the key and the `r || s` signature encoding.
    let base = "\"@status\": 200\n\"content-type\": application/json\n\"content-digest\": sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:\n\"content-length\": 23\n\"@signature-params\": (\"@status\" \"content-type\" \"content-digest\" \"content-length\");created=1618884473;keyid=\"test-key-ecc-p256\"";
    let sig = B64
        .decode("wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==")
        .unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, p256_public())
        .verify(base.as_bytes(), &sig)
        .unwrap();
}

#[test]
fn ecdsa_p256_signs_the_b2_request_verifiably_with_b1_3_key() {
    // ECDSA signatures are randomised: sign B.2.6's components with the
    // B.1.3 key, rebuild the base by hand, and verify with its public key.
    let s = signer(
        "ecdsa-p256-sha256",
        "test-key-ecc-p256",
        &["@method", "@path", "@query", "@authority", "content-type"],
        P256_KEY,
        "sig1",
    );
    let mut req = b2_request();
    s.sign_at(&mut req, None, &RFC_MOMENT).unwrap();
    let input = header(&req, "signature-input");
    let params = input.strip_prefix("sig1=").unwrap();
    let base = format!(
        "\"@method\": POST\n\"@path\": /foo\n\"@query\": ?param=Value&Pet=dog\n\"@authority\": example.com\n\"content-type\": application/json\n\"@signature-params\": {params}"
    );
    let sig_header = header(&req, "signature");
    let b64 = sig_header
        .strip_prefix("sig1=:")
        .and_then(|s| s.strip_suffix(':'))
        .unwrap();
    let sig = B64.decode(b64).unwrap();
    assert_eq!(sig.len(), 64, "r || s");
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, p256_public())
        .verify(base.as_bytes(), &sig)
        .unwrap();
}

#[test]
fn content_digest_is_sha256_of_the_body_and_covered() {
    let s = signer(
        "ed25519",
        "k",
        &["@method", "@target-uri", "content-digest"],
        ED25519_KEY,
        "sig1",
    );
    let mut req = b2_request();
    let hex = crate::inject::sigv4::payload_sha256(b"{\"hello\": \"world\"}");
    s.sign_at(&mut req, Some(&hex), &RFC_MOMENT).unwrap();
    // RFC 9530 appendix B.1's sha-256 of `{"hello": "world"}`.
    assert_eq!(
        header(&req, "content-digest"),
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    );
    assert!(header(&req, "signature-input").contains(r#""content-digest""#));
}

#[test]
fn derived_components_follow_the_rfc() {
    let uri: http::Uri = "https://Example.COM:443/a%20b/c?x=1&y".parse().unwrap();
    let headers = http::HeaderMap::new();
    let msg = Message {
        method: &http::Method::GET,
        uri: &uri,
        headers: &headers,
    };
    let v = |c: Component| msg.value(&c).unwrap().unwrap();
    assert_eq!(v(Component::Authority), "example.com");
    assert_eq!(v(Component::TargetUri), "https://example.com/a%20b/c?x=1&y");
    assert_eq!(v(Component::Path), "/a%20b/c");
    assert_eq!(v(Component::Query), "?x=1&y");
    assert_eq!(v(Component::RequestTarget), "/a%20b/c?x=1&y");
    let bare: http::Uri = "http://h:8080".parse().unwrap();
    let msg = Message {
        method: &http::Method::GET,
        uri: &bare,
        headers: &headers,
    };
    assert_eq!(msg.value(&Component::Path).unwrap().unwrap(), "/");
    assert_eq!(msg.value(&Component::Query).unwrap().unwrap(), "?");
    assert_eq!(msg.value(&Component::Authority).unwrap().unwrap(), "h:8080");
}

#[test]
fn bad_settings_and_keys_are_refused_without_the_key() {
    let comps = vec!["@method".to_string()];
    let base = || Settings {
        key_id: "k",
        alg: "ed25519",
        components: &comps,
        expires: None,
        nonce: false,
        label: None,
        tag: None,
        max_signed_body: None,
        key_encoding: None,
    };
    assert!(
        HttpSignatureSpec::new(Settings {
            alg: "rsa-v1_5-sha256",
            ..base()
        })
        .is_err()
    );
    assert!(
        HttpSignatureSpec::new(Settings {
            label: Some("Sig"),
            ..base()
        })
        .is_err()
    );
    assert!(
        HttpSignatureSpec::new(Settings {
            key_id: "",
            ..base()
        })
        .is_err()
    );
    let dup = vec!["@method".to_string(), "@method".to_string()];
    assert!(
        HttpSignatureSpec::new(Settings {
            components: &dup,
            ..base()
        })
        .is_err()
    );
    let odd = vec!["@status".to_string()];
    assert!(
        HttpSignatureSpec::new(Settings {
            components: &odd,
            ..base()
        })
        .is_err()
    );
    let spec = HttpSignatureSpec::new(base()).unwrap();
    let not_pem = Material::Token(Secret::new("not-a-pem-key-material").unwrap());
    let err = spec.render(&not_pem).err().unwrap().to_string();
    assert!(!err.contains("not-a-pem-key-material"), "{err}");
    // A P-256 key where Ed25519 is configured.
    let wrong = Material::Token(Secret::new(P256_KEY).unwrap());
    assert!(spec.render(&wrong).is_err());
}
