package component

import (
	"encoding/xml"
	"strings"

	"mellium.im/xmlstream"
)

// NSDataForms is the namespace of XEP-0004 data forms.
const NSDataForms = "jabber:x:data"

// formField is one field of a data form the component sends. (mellium's
// form package cannot make a form of type result and mishandles multi-line
// text ending in a newline, so forms are built here.)
type formField struct {
	Var, Type, Label, Desc string
	Required               bool
	Values                 []string
	Options                []formOption
}

type formOption struct{ Label, Value string }

// dataForm builds <x xmlns='jabber:x:data' type=typ>.
func dataForm(typ, title, instructions string, fields []formField) xml.TokenReader {
	var children []xml.TokenReader
	if title != "" {
		children = append(children, textEl(NSDataForms, "title", title))
	}
	for _, line := range strings.Split(instructions, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			children = append(children, textEl(NSDataForms, "instructions", line))
		}
	}
	for _, f := range fields {
		attrs := []xml.Attr{{Name: xml.Name{Local: "var"}, Value: f.Var}}
		if f.Type != "" {
			attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "type"}, Value: f.Type})
		}
		if f.Label != "" {
			attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "label"}, Value: f.Label})
		}
		var inner []xml.TokenReader
		if f.Desc != "" {
			inner = append(inner, textEl(NSDataForms, "desc", f.Desc))
		}
		if f.Required {
			inner = append(inner, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NSDataForms, Local: "required"}}))
		}
		for _, v := range f.Values {
			inner = append(inner, textEl(NSDataForms, "value", v))
		}
		for _, o := range f.Options {
			var oattrs []xml.Attr
			if o.Label != "" {
				oattrs = []xml.Attr{{Name: xml.Name{Local: "label"}, Value: o.Label}}
			}
			inner = append(inner, xmlstream.Wrap(textEl(NSDataForms, "value", o.Value),
				xml.StartElement{Name: xml.Name{Space: NSDataForms, Local: "option"}, Attr: oattrs}))
		}
		children = append(children, xmlstream.Wrap(xmlstream.MultiReader(inner...),
			xml.StartElement{Name: xml.Name{Space: NSDataForms, Local: "field"}, Attr: attrs}))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(children...), xml.StartElement{
		Name: xml.Name{Space: NSDataForms, Local: "x"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: typ}},
	})
}

// textEl is <local xmlns=ns>text</local>.
func textEl(ns, local, text string) xml.TokenReader {
	return xmlstream.Wrap(xmlstream.Token(xml.CharData(text)), xml.StartElement{Name: xml.Name{Space: ns, Local: local}})
}

// lines splits text into the values of a text-multi field.
func lines(text string) []string {
	return strings.Split(strings.TrimRight(strings.ReplaceAll(text, "\r\n", "\n"), "\n"), "\n")
}

// submittedForm is a data form as a client submits it.
type submittedForm struct {
	Type   string `xml:"type,attr"`
	Fields []struct {
		Var    string   `xml:"var,attr"`
		Values []string `xml:"jabber:x:data value"`
	} `xml:"jabber:x:data field"`
}

// values returns the form's fields by var (the first of repeated ones).
func (f *submittedForm) values() map[string][]string {
	m := make(map[string][]string, len(f.Fields))
	for _, fl := range f.Fields {
		if _, dup := m[fl.Var]; !dup {
			m[fl.Var] = fl.Values
		}
	}
	return m
}

// size is the number of bytes of the form's values.
func (f *submittedForm) size() int {
	n := 0
	for _, fl := range f.Fields {
		n += len(fl.Var)
		for _, v := range fl.Values {
			n += len(v)
		}
	}
	return n
}
