// Package enroll gets client certificates for XMPP accounts: self-signed ones
// a client makes for itself and uploads with XEP-0257 (SelfSigned), and ones
// issued by a CA through an Issuer: the embedded CA (enroll/localca, the
// default), step-ca with a JWK provisioner (enroll/stepca) or an EST server
// (enroll/est).
//
// The rules every Issuer applies, whatever the CA:
//   - the caller passes the authenticated bare JID of the XMPP session
//     (IssueRequest.Account); no name is ever taken from the client's
//     request;
//   - before anything is signed or sent, the request is checked: a CSR's
//     signature must verify and it may ask for no name but that JID
//     (CheckCSR); a self-signed certificate offered instead must carry a
//     valid self-signature (CheckSelfSigned);
//   - whatever the CA returns must pass sasl.CheckUpload for the account and
//     carry exactly one name, the xmppAddr of the account, with EKU
//     clientAuth, for the requested key, chaining to the issuer's roots
//     (CheckIssued); otherwise it is not used and never stored;
//   - issued certificates are stored with source "enrolled"
//     (Issued.Record) and are listed by XEP-0257 <items/> like uploads.
//
// Policy holds what each served domain allows: which issuer, the lifetime
// of issued certificates (DefaultLifetime, 7 days), whether self-signed
// uploads are allowed, and the roots whose certificates may log in without
// an upload.
package enroll
