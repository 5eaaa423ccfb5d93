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
// DomainPolicy holds what each served domain allows: which issuer, the lifetime
// of issued certificates (DefaultLifetime, 7 days), whether self-signed
// uploads are allowed, and the roots whose certificates may log in without
// an upload.
//
// Service puts it together for the component and the CLI: Enroll issues and
// stores a certificate for an account through its domain's issuer, Latest
// returns the newest one, Sweep renews certificates before they expire (the
// embedded CA re-signs the same public key: IssueRequest.Renew) and revokes
// at the CA what was revoked in the store, RevokeAtCA is the hook for
// XEP-0257 revoke, and Trusted, IsRevoked (sasl.Authorizer) and CheckAppend
// (xep0257.Handler) apply each domain's trust. Revocation sources are
// RevocationCheckers: the embedded CA's own list, and CRLChecker for CRLs
// (step-ca's, a policy's CRLURLs, a certificate's distribution points).
// See docs/ENROLLMENT.md.
package enroll
