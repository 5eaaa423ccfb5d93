package xep0257_test

import (
	"encoding/xml"
	"fmt"
	"strings"

	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/xep0257"
)

func ExampleDecode() {
	payload := `<append xmlns='urn:xmpp:saslcert:1'>
	  <name> Simple Bot </name>
	  <x509cert>
	    MAMC
	    AQA=
	  </x509cert>
	  <no-cert-management/>
	</append>`
	d := xml.NewDecoder(strings.NewReader(payload))
	tok, _ := d.Token()
	req, err := xep0257.Decode(stanza.SetIQ, tok.(xml.StartElement), d)
	if err != nil {
		fmt.Println(err)
		return
	}
	a := req.(*xep0257.Append)
	fmt.Printf("%q % x %v\n", a.Name, a.Cert, a.NoCertManagement)

	d = xml.NewDecoder(strings.NewReader(`<append xmlns='urn:xmpp:saslcert:1'><name>Bot</name></append>`))
	tok, _ = d.Token()
	_, err = xep0257.Decode(stanza.SetIQ, tok.(xml.StartElement), d)
	se := err.(stanza.Error)
	fmt.Println(se.Type, se.Condition, se.Text[""])
	// Output:
	// "Simple Bot" 30 03 02 01 00 true
	// modify bad-request <append/> has no <x509cert/>
}
