package enrollcmd

import (
	"encoding/xml"
	"fmt"
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

// submittedForm is a data form as a client submits it. Elements of other
// namespaces are kept in Other so that checked can refuse them rather than
// drop a value unread.
type submittedForm struct {
	Type   string `xml:"type,attr"`
	Fields []struct {
		Var    string   `xml:"var,attr"`
		Values []string `xml:"jabber:x:data value"`
		Other  []anyEl  `xml:",any"`
	} `xml:"jabber:x:data field"`
	Other []anyEl `xml:",any"`
}

// anyEl is an element of a submitted form that has no field of its own.
type anyEl struct{ XMLName xml.Name }

// fieldKind is how checked reads a known field.
type fieldKind int

const (
	fieldSingle  fieldKind = iota // at most one value (text-single, hidden)
	fieldMulti                    // any number of values (text-multi: one per line)
	fieldBoolean                  // at most one value: 0, 1, false or true (XEP-0004 §3.3)
)

// FormError is why a submitted form was refused; the answer is
// modify/bad-request with Error() as its text, which names the field.
type FormError struct {
	Field   string // the field's var; "" for the form itself
	Problem string
}

func (e *FormError) Error() string {
	if e.Field == "" {
		return "the data form " + e.Problem
	}
	return fmt.Sprintf("field %q %s", e.Field, e.Problem)
}

// checked returns the values of the form's fields by var after checking
// them strictly against known (the fields the command reads, and how), so
// that nothing is read in a way the client did not mean:
//   - a field without var, or a var that appears twice;
//   - in a known field, a child element other than <value/> of
//     jabber:x:data, or more than one value where one is allowed;
//   - a boolean that is not exactly 0, 1, false or true;
//   - an element in the form, or a FORM_TYPE value, that is not ours
//
// are *FormError. Unknown fields are allowed (and not returned).
func (f *submittedForm) checked(known map[string]fieldKind) (map[string][]string, error) {
	for _, o := range f.Other {
		if o.XMLName.Space != NSDataForms {
			return nil, &FormError{Problem: fmt.Sprintf("holds <%s xmlns='%s'/>; only jabber:x:data elements belong in it", o.XMLName.Local, o.XMLName.Space)}
		}
	}
	vals := make(map[string][]string, len(f.Fields))
	seen := make(map[string]bool, len(f.Fields))
	for _, fl := range f.Fields {
		if fl.Var == "" {
			return nil, &FormError{Problem: "has a field without var"}
		}
		if seen[fl.Var] {
			return nil, &FormError{Field: fl.Var, Problem: "appears more than once"}
		}
		seen[fl.Var] = true
		kind, ok := known[fl.Var]
		if !ok {
			continue
		}
		for _, o := range fl.Other {
			if o.XMLName.Space != NSDataForms {
				return nil, &FormError{Field: fl.Var, Problem: fmt.Sprintf("holds <%s xmlns='%s'/>; send its value in <value/>", o.XMLName.Local, o.XMLName.Space)}
			}
		}
		if kind != fieldMulti && len(fl.Values) > 1 {
			return nil, &FormError{Field: fl.Var, Problem: fmt.Sprintf("has %d values; it takes one", len(fl.Values))}
		}
		if kind == fieldBoolean && len(fl.Values) == 1 {
			if _, ok := parseBoolean(fl.Values[0]); !ok {
				return nil, &FormError{Field: fl.Var, Problem: fmt.Sprintf("is %s, not a boolean (0, 1, false or true)", quoteText(fl.Values[0]))}
			}
		}
		vals[fl.Var] = fl.Values
	}
	if v, ok := vals["FORM_TYPE"]; ok && (len(v) != 1 || v[0] != FormType) {
		return nil, &FormError{Field: "FORM_TYPE", Problem: "is not " + FormType}
	}
	return vals, nil
}

// parseBoolean reads an XEP-0004 boolean: exactly 0, 1, false or true.
func parseBoolean(v string) (b, ok bool) {
	switch v {
	case "1", "true":
		return true, true
	case "0", "false":
		return false, true
	}
	return false, false
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
