package component

import (
	"encoding/xml"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/enrollcmd"
	"github.com/saslcert/saslcert/xep0257"
)

// Service discovery namespaces (XEP-0030).
const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
)

// The disco#info nodes mod_delegation (XEP-0355) queries on connect
// (Prosody's under :2, ejabberd's under :1). The features listed on the
// first of each pair are added to the server's own disco#info, so that
// clients see urn:xmpp:saslcert:1 on their server; the bare-JID node stays
// empty.
const (
	nodeDelegation      = "urn:xmpp:delegation:2::" + xep0257.NS
	nodeDelegationBare  = "urn:xmpp:delegation:2:bare:" + xep0257.NS
	nodeDelegation1     = "urn:xmpp:delegation:1::" + xep0257.NS
	nodeDelegation1Bare = "urn:xmpp:delegation:1:bare:" + xep0257.NS
)

// discoIdentity is the component's identity.
type discoIdentity struct {
	Category, Type, Name string
}

// discoNode is what disco#info lists for one node.
type discoNode struct {
	identities []discoIdentity
	features   []string
}

// discoInfo is what the component answers per node. mellium's disco.Handle
// walks the handlers of the mux for features without distinguishing a node
// that does not exist from an empty one, so the component answers itself:
// item-not-found for unknown nodes, and the node echoed otherwise. With
// enrollment, discoInfoFor adds the ad-hoc commands (commands.go).
var discoInfo = map[string]discoNode{
	"": {
		identities: []discoIdentity{{Category: "auth", Type: "cert", Name: "saslcert"}},
		features:   []string{nsDiscoInfo, ping.NS, xep0257.NS, NSPlugin},
	},
	nodeDelegation:      {features: []string{xep0257.NS}},
	nodeDelegationBare:  {},
	nodeDelegation1:     {features: []string{xep0257.NS}},
	nodeDelegation1Bare: {},
}

func nodeOf(start *xml.StartElement) string {
	for _, a := range start.Attr {
		if a.Name.Local == "node" && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// queryStart is the <query/> of an answer, echoing node.
func queryStart(ns, node string) xml.StartElement {
	s := xml.StartElement{Name: xml.Name{Space: ns, Local: "query"}}
	if node != "" {
		s.Attr = []xml.Attr{{Name: xml.Name{Local: "node"}, Value: node}}
	}
	return s
}

// handleDiscoInfo answers disco#info queries to the component JID.
func (l *link) handleDiscoInfo(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	c := l.c
	node := nodeOf(start)
	info, ok := c.discoInfoFor(node)
	if !ok || iq.To.Localpart() != "" || iq.To.Resourcepart() != "" {
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Cancel, stanza.ItemNotFound, "")))
	}
	var children []xml.TokenReader
	for _, id := range info.identities {
		children = append(children, xmlstream.Wrap(nil, xml.StartElement{
			Name: xml.Name{Space: nsDiscoInfo, Local: "identity"},
			Attr: []xml.Attr{
				{Name: xml.Name{Local: "category"}, Value: id.Category},
				{Name: xml.Name{Local: "type"}, Value: id.Type},
				{Name: xml.Name{Local: "name"}, Value: id.Name},
			},
		}))
	}
	for _, f := range info.features {
		children = append(children, xmlstream.Wrap(nil, xml.StartElement{
			Name: xml.Name{Space: nsDiscoInfo, Local: "feature"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "var"}, Value: f}},
		}))
	}
	c.log.Debug("disco#info", "from", iq.From.String(), "node", node)
	return send(t, c.resultIQ(iq, xmlstream.Wrap(xmlstream.MultiReader(children...), queryStart(nsDiscoInfo, node))))
}

// handleDiscoItems answers disco#items: the component has no items.
func (l *link) handleDiscoItems(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	c := l.c
	node := nodeOf(start)
	if node == enrollcmd.NSCommands && c.enroll != nil && iq.To.Localpart() == "" && iq.To.Resourcepart() == "" {
		return send(t, c.resultIQ(iq, c.commandItems()))
	}
	if node != "" || iq.To.Localpart() != "" || iq.To.Resourcepart() != "" {
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Cancel, stanza.ItemNotFound, "")))
	}
	return send(t, c.resultIQ(iq, xmlstream.Wrap(nil, queryStart(nsDiscoItems, ""))))
}
