package xep0257_test

import (
	"bytes"
	"errors"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/internal/xmpptest"
	"github.com/saslcert/saslcert/xep0257"
)

// TestClientRoundTrip drives the handler with the client helpers over an
// in-process client/server session pair. The client sends no 'to' (as
// unmodified clients do) and the server side stamps 'from' as a server would.
func TestClientRoundTrip(t *testing.T) {
	f := newFixture(t)
	m := mux.New(stanza.NSClient, xep0257.Handle(f.h))
	p := xmpptest.NewPair(t, xmpptest.Options{ClientJID: alice, ServerHandler: xmpptest.StampFrom(alice, m)})
	ctx := t.Context()
	var none jid.JID

	items, err := xep0257.Fetch(ctx, p.Client, none)
	if err != nil || len(items) != 0 {
		t.Fatalf("Fetch = %v, %v; want no items", items, err)
	}

	phone := certFor(t, "alice@example.org")
	bot := certFor(t, "alice@example.org")
	if err := xep0257.AppendCert(ctx, p.Client, none, "Phone", phone, false); err != nil {
		t.Fatalf("AppendCert: %v", err)
	}
	if err := xep0257.AppendCertIQ(ctx, p.Client, stanza.IQ{ID: "bot-1"}, xep0257.Append{Name: "Bot", Cert: bot, NoCertManagement: true}); err != nil {
		t.Fatalf("AppendCertIQ: %v", err)
	}
	f.sess.login(alice, phone)

	err = xep0257.AppendCert(ctx, p.Client, none, "Phone", certFor(t, "alice@example.org"), false)
	if se := (stanza.Error{}); !errors.As(err, &se) || se.Condition != stanza.Conflict || se.Type != stanza.Cancel {
		t.Fatalf("AppendCert with a taken name = %#v, want cancel/conflict", err)
	}
	err = xep0257.AppendCert(ctx, p.Client, none, "Bob", certFor(t, "bob@example.org"), false)
	if !errors.Is(err, stanza.Error{Condition: stanza.NotAcceptable}) {
		t.Fatalf("AppendCert of bob's certificate = %#v, want not-acceptable", err)
	}

	items, err = xep0257.FetchIQ(ctx, p.Client, stanza.IQ{ID: "list-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 ||
		items[0].Name != "Phone" || !bytes.Equal(items[0].Cert, phone) || len(items[0].Users) != 1 || items[0].Users[0] != "phone" ||
		items[1].Name != "Bot" || !bytes.Equal(items[1].Cert, bot) || !items[1].NoCertManagement || items[1].Users != nil {
		t.Fatalf("Fetch = %+v", items)
	}

	if err := xep0257.DisableCert(ctx, p.Client, none, "Bot"); err != nil {
		t.Fatalf("DisableCert: %v", err)
	}
	err = xep0257.DisableCertIQ(ctx, p.Client, stanza.IQ{}, "Bot")
	if !errors.Is(err, stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound}) {
		t.Fatalf("DisableCert twice = %#v, want item-not-found", err)
	}
	if err := xep0257.RevokeCert(ctx, p.Client, none, "Phone"); err != nil {
		t.Fatalf("RevokeCert: %v", err)
	}
	if len(f.revoked) != 1 || !bytes.Equal(f.revoked[0].DER, phone) {
		t.Errorf("Revoked calls: %+v", f.revoked)
	}
	// A revoke closes the sessions of the certificate (Revoked): alice goes
	// on with a password session. (A session whose certificate is no
	// longer active may not manage: TestProcessNoCertManagement.)
	f.sess.logout(alice)
	err = xep0257.RevokeCertIQ(ctx, p.Client, stanza.IQ{}, "Phone")
	if !errors.Is(err, stanza.Error{Condition: stanza.ItemNotFound}) {
		t.Fatalf("RevokeCert twice = %#v, want item-not-found", err)
	}
	items, err = xep0257.Fetch(ctx, p.Client, none)
	if err != nil || len(items) != 0 {
		t.Fatalf("Fetch after disable and revoke = %+v, %v; want none", items, err)
	}

	// Bad input from a client gets an answer and the stream goes on.
	err = xep0257.AppendCert(ctx, p.Client, none, " ", phone, false)
	if !errors.Is(err, stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable}) {
		t.Fatalf("AppendCert with a blank name = %#v, want modify/not-acceptable", err)
	}
	if _, err := xep0257.Fetch(ctx, p.Client, none); err != nil {
		t.Fatalf("Fetch after a refused request: %v", err)
	}
}

// TestClientTo checks that a set 'to' is sent and the reply is matched.
func TestClientTo(t *testing.T) {
	f := newFixture(t)
	m := mux.New(stanza.NSClient, xep0257.Handle(f.h))
	p := xmpptest.NewPair(t, xmpptest.Options{ClientJID: alice, ServerHandler: xmpptest.StampFrom(alice, m)})
	if _, err := xep0257.Fetch(t.Context(), p.Client, alice.Bare()); err != nil {
		t.Fatal(err)
	}
}
