package api

import (
	"net/http"

	"mellium.im/xmpp/jid"
)

// tenantJSON is a tenant: a served domain and its policy.
type tenantJSON struct {
	Domain string `json:"domain"`
	// Enrollment is the domain's enrolment policy (null: certificates are
	// not issued for it).
	Enrollment *enrollPolicyJSON `json:"enrollment"`
	KeyPolicy  keyPolicyJSON     `json:"key_policy"`
}

type enrollPolicyJSON struct {
	Issuer          string `json:"issuer"`
	LifetimeSeconds int64  `json:"lifetime_seconds"`
	AllowSelfSigned bool   `json:"allow_self_signed"`
	TrustedRoots    int    `json:"trusted_roots"`
}

type keyPolicyJSON struct {
	MinRSABits       int   `json:"min_rsa_bits"`
	ClockSkewSeconds int64 `json:"clock_skew_seconds"`
}

// listTenants answers the tenants the token may see: its own (a token names
// exactly one tenant).
func (a *API) listTenants(c *call) (*reply, error) {
	if _, err := c.queryParams(); err != nil {
		return nil, err
	}
	out := struct {
		Tenants []tenantJSON `json:"tenants"`
	}{Tenants: []tenantJSON{}}
	if a.served(c.p.Tenant) {
		out.Tenants = append(out.Tenants, a.tenant(c.p.Tenant))
	}
	return jsonReply(http.StatusOK, out)
}

func (a *API) tenant(domain string) tenantJSON {
	t := tenantJSON{Domain: domain, KeyPolicy: keyPolicyJSON{
		MinRSABits: a.cfg.Policy.MinRSABits, ClockSkewSeconds: int64(a.cfg.Policy.ClockSkew.Seconds())}}
	if a.cfg.Enroll == nil {
		return t
	}
	// The policy is per domain; any account of it names the domain.
	probe, err := jid.New("policy", domain, "")
	if err != nil {
		return t
	}
	if p, ok := a.cfg.Enroll.DomainPolicy(probe); ok && p.Issuer != "" && a.cfg.Enroll.Offered(probe) {
		t.Enrollment = &enrollPolicyJSON{Issuer: p.Issuer, LifetimeSeconds: int64(p.EffectiveLifetime().Seconds()),
			AllowSelfSigned: p.AllowSelfSigned, TrustedRoots: len(p.TrustedRoots)}
	}
	return t
}
