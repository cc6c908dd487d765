package dataset

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// PII types the Scrub stage finds; each becomes a placeholder like <EMAIL_1>.
const (
	PIIEmail  = "EMAIL"
	PIIPhone  = "PHONE"
	PIICard   = "CARD"
	PIIIBAN   = "IBAN"
	PIIIP     = "IP"
	PIISecret = "SECRET"
)

// PIITypes lists every type, in the order they are matched (an earlier type
// wins where two overlap).
var PIITypes = []string{PIISecret, PIIEmail, PIIIBAN, PIIIP, PIICard, PIIPhone}

// ScrubSpec configures the Scrub stage.
type ScrubSpec struct {
	// Types to scrub (default all of PIITypes).
	Types []string `yaml:"types" json:"types,omitempty"`
}

// Match is one piece of PII found in a text.
type Match struct {
	Type       string
	Start, End int // byte offsets
}

// Scrubber finds PII by hand-written scanners rather than one large regular
// expression: each type is anchored on a cheap byte ('@', a digit, a known
// key prefix) and then checked the way a human would check it — cards by
// the Luhn checksum and issuer prefix, IBANs by mod-97 and country length,
// IPs by parsing, phones by international (+ or 00) or national (0 trunk,
// NANP 3-3-4) grouping, and secrets by known prefixes (sk-, AKIA, ghp_...),
// Bearer tokens, private key blocks, and high-entropy values after key-like
// names (api_key=, "password": ...). Digit runs that are dates, versions,
// order numbers or fail their checksum are left alone.
type Scrubber struct {
	on map[string]bool
}

// NewScrubber returns a scrubber for types (all when empty).
func NewScrubber(types []string) (*Scrubber, error) {
	s := &Scrubber{on: map[string]bool{}}
	if len(types) == 0 {
		types = PIITypes
	}
	for _, t := range types {
		t = strings.ToUpper(t)
		if !slices.Contains(PIITypes, t) {
			return nil, fmt.Errorf("scrub.types: unknown type %q (want %s)", t, strings.Join(PIITypes, ", "))
		}
		s.on[t] = true
	}
	return s, nil
}

// Scrub builds the scrub stage. It never drops rows; its counters report
// how many of each type it replaced ("EMAIL": 12) and in how many rows
// ("rows with PII").
func Scrub(spec ScrubSpec) (Stage, error) {
	s, err := NewScrubber(spec.Types)
	if err != nil {
		return nil, err
	}
	return RowStage{StageName: "scrub", Workers: 2, Decide: func(_ context.Context, ex *Example, out *Out) (string, string, error) {
		counts := s.ScrubExample(ex)
		if len(counts) > 0 {
			out.Count("rows with PII", 1)
			for t, n := range counts {
				out.Count(t, int64(n))
			}
		}
		return "", "", nil
	}}, nil
}

// placeholders numbers the distinct values of each type within one conversation.
type placeholders struct {
	byValue map[string]string
	next    map[string]int
	found   map[string]int
}

func (p *placeholders) get(typ, value string) string {
	key := typ + "\x00" + canonicalPII(typ, value)
	if ph, ok := p.byValue[key]; ok {
		p.found[typ]++
		return ph
	}
	if p.byValue == nil {
		p.byValue, p.next, p.found = map[string]string{}, map[string]int{}, map[string]int{}
	}
	p.next[typ]++
	p.found[typ]++
	ph := "<" + typ + "_" + strconv.Itoa(p.next[typ]) + ">"
	p.byValue[key] = ph
	return ph
}

// canonicalPII makes two spellings of one value share a placeholder.
func canonicalPII(typ, v string) string {
	switch typ {
	case PIIPhone, PIICard:
		return digitsOnly(v)
	case PIIEmail:
		return strings.ToLower(v)
	case PIIIBAN:
		return strings.ReplaceAll(v, " ", "")
	}
	return v
}

// ScrubExample replaces PII in every message's text and tool call
// arguments, with placeholders consistent across the conversation, and
// returns how many it replaced per type.
func (s *Scrubber) ScrubExample(ex *Example) map[string]int {
	var p placeholders
	for i := range ex.Messages {
		m := &ex.Messages[i]
		if m.Content.Parts != nil {
			for j := range m.Content.Parts {
				if m.Content.Parts[j].Type == "text" {
					m.Content.Parts[j].Text = s.replace(m.Content.Parts[j].Text, &p)
				}
			}
		} else if m.Content.Text != "" {
			m.Content.Text = s.replace(m.Content.Text, &p)
		}
		for j := range m.ToolCalls {
			m.ToolCalls[j].Function.Arguments = s.replace(m.ToolCalls[j].Function.Arguments, &p)
		}
	}
	return p.found
}

// ScrubText replaces PII in one text and returns it with counts per type.
func (s *Scrubber) ScrubText(text string) (string, map[string]int) {
	var p placeholders
	out := s.replace(text, &p)
	return out, p.found
}

func (s *Scrubber) replace(text string, p *placeholders) string {
	ms := s.Find(text)
	if len(ms) == 0 {
		return text
	}
	var b strings.Builder
	b.Grow(len(text))
	last := 0
	for _, m := range ms {
		b.WriteString(text[last:m.Start])
		b.WriteString(p.get(m.Type, text[m.Start:m.End]))
		last = m.End
	}
	b.WriteString(text[last:])
	return b.String()
}

// Find returns the PII in text, sorted by position, not overlapping.
func (s *Scrubber) Find(text string) []Match {
	var ms []Match
	add := func(typ string, start, end int) {
		if !s.on[typ] || start >= end {
			return
		}
		for _, m := range ms {
			if start < m.End && m.Start < end {
				return
			}
		}
		ms = append(ms, Match{typ, start, end})
	}
	findSecrets(text, add)
	if strings.IndexByte(text, '@') >= 0 {
		findEmails(text, add)
	}
	if strings.IndexByte(text, ':') >= 0 {
		findIPv6(text, add)
	}
	findDigitRuns(text, add)
	slices.SortFunc(ms, func(a, b Match) int { return a.Start - b.Start })
	return ms
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool {
	return isDigit(c) || isUpper(c) || 'a' <= c && c <= 'z'
}

// wordChar reports whether the byte before a match would glue it to a word.
func wordChar(c byte) bool { return isAlnum(c) || c == '_' }

func digitsOnly(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// --- emails

func findEmails(s string, add func(string, int, int)) {
	for at := strings.IndexByte(s, '@'); at >= 0; {
		start := at
		for start > 0 && emailLocal(s[start-1]) {
			start--
		}
		for start < at && s[start] == '.' {
			start++
		}
		end := at + 1
		lastDot := -1
		for end < len(s) && (isAlnum(s[end]) || s[end] == '-' || s[end] == '.') {
			if s[end] == '.' {
				lastDot = end
			}
			end++
		}
		for end > at+1 && (s[end-1] == '.' || s[end-1] == '-') {
			end--
		}
		if lastDot >= end {
			lastDot = strings.LastIndexByte(s[at+1:end], '.')
			if lastDot >= 0 {
				lastDot += at + 1
			}
		}
		if start < at && lastDot > at+1 && end-lastDot-1 >= 2 && allLetters(s[lastDot+1:end]) {
			add(PIIEmail, start, end)
		}
		next := strings.IndexByte(s[at+1:], '@')
		if next < 0 {
			break
		}
		at += 1 + next
	}
}

func emailLocal(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

func allLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// --- digit runs: cards, IPv4, phones; IBANs (anchored on their check digits)

func findDigitRuns(s string, add func(string, int, int)) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) {
			continue
		}
		// IBAN: two capitals and two check digits at a word start.
		if i >= 2 && isUpper(s[i-1]) && isUpper(s[i-2]) && (i == 2 || !wordChar(s[i-3])) && i+1 < len(s) && isDigit(s[i+1]) {
			end, span := matchIBAN(s, i-2)
			if end > 0 {
				add(PIIIBAN, i-2, end)
				i = end - 1
				continue
			}
			if span > 0 { // IBAN-shaped but failing its checksum: not a card or phone either
				i = span - 1
				continue
			}
		}
		start := i
		if start > 0 && (wordChar(s[start-1]) || s[start-1] == '.' || s[start-1] == ',' || s[start-1] == '-' || s[start-1] == '/' || s[start-1] == '#') {
			// The middle of a word, number or identifier: skip the whole run.
			for i < len(s) && (isAlnum(s[i]) || s[i] == '.' || s[i] == '-' || s[i] == '_') {
				i++
			}
			continue
		}
		if start > 0 && (s[start-1] == '+' || s[start-1] == '(') {
			start--
			if s[start] == '(' && start > 0 && s[start-1] == '+' { // "+(44)"
				start--
			}
		}
		end, groups, seps := scanNumber(s, i)
		i = end - 1
		if end < len(s) && (wordChar(s[end]) || s[end] == '@') {
			continue // glued to letters: an id like 123abc
		}
		span := s[start:end]
		nd := 0
		for _, g := range groups {
			nd += g
		}
		switch {
		case seps == "." && len(groups) == 4 && ipv4(span) && !afterVersionWord(s, start):
			add(PIIIP, start, end)
		case (seps == "" || seps == " " || seps == "-") && isCard(span, groups):
			add(PIICard, start, end)
		case isPhone(span, groups, seps, nd):
			add(PIIPhone, start, end)
		}
	}
}

// scanNumber reads digits and single separators (space, -, ., parentheses,
// "/") from s[i], returning the end, the sizes of the digit groups and the
// distinct separators used (parentheses excluded).
func scanNumber(s string, i int) (end int, groups []int, seps string) {
	g := 0
	for i < len(s) {
		c := s[i]
		if isDigit(c) {
			g++
			i++
			continue
		}
		// A separator (or ") " / "(") followed by a digit continues the number.
		j := i
		for j < len(s) && j-i < 2 && (s[j] == ' ' || s[j] == '-' || s[j] == '.' || s[j] == '(' || s[j] == ')' || s[j] == '/') {
			j++
		}
		if j == i || j >= len(s) || !isDigit(s[j]) || (j-i == 2 && s[i] != ')' && s[j-1] != '(') {
			break
		}
		for k := i; k < j; k++ {
			if c := s[k]; c != '(' && c != ')' && !strings.ContainsRune(seps, rune(c)) {
				seps += string(c)
			}
		}
		groups = append(groups, g)
		g = 0
		i = j
		if len(groups) > 8 {
			break
		}
	}
	groups = append(groups, g)
	return i, groups, seps
}

// afterVersionWord reports whether the word before s[i] names a version
// ("version 4.3.2.1", "v 1.2.3.4", "build", "release"): dotted quads there
// are versions, not addresses.
func afterVersionWord(s string, i int) bool {
	j := i
	for j > 0 && s[j-1] == ' ' {
		j--
	}
	k := j
	for k > 0 && isAlnum(s[k-1]) {
		k--
	}
	switch strings.ToLower(s[k:j]) {
	case "version", "v", "ver", "build", "release", "firmware", "chapter", "section":
		return true
	}
	return false
}

func ipv4(span string) bool {
	a, err := netip.ParseAddr(span)
	return err == nil && a.Is4()
}

// isCard checks length, grouping, issuer prefix and the Luhn checksum.
func isCard(span string, groups []int) bool {
	d := digitsOnly(span)
	if len(d) < 13 || len(d) > 19 {
		return false
	}
	if len(groups) > 1 {
		ok := true
		for _, g := range groups[:len(groups)-1] {
			if g != 4 {
				ok = false
			}
		}
		amex := len(groups) == 3 && groups[0] == 4 && groups[1] == 6 && groups[2] == 5
		if !ok && !amex {
			return false
		}
	}
	return cardIssuer(d) && luhn(d)
}

// cardIssuer accepts the major networks' IIN ranges: Visa 4, Mastercard
// 51–55 and 2221–2720, Amex 34/37, Discover 6011/644–649/65, JCB 3528–3589,
// Diners 300–305/36/38, UnionPay 62, Maestro 50/56–58/67.
func cardIssuer(d string) bool {
	p2, _ := strconv.Atoi(d[:2])
	p4, _ := strconv.Atoi(d[:4])
	switch {
	case d[0] == '4':
		return true
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720:
		return true
	case p2 == 34 || p2 == 37 || p2 == 36 || p2 == 38 || p2 == 62 || p2 == 65 || p2 == 50 || p2 == 67 || (p2 >= 56 && p2 <= 58):
		return true
	case p4 == 6011 || (p4 >= 6440 && p4 <= 6499) || (p4 >= 3528 && p4 <= 3589) || (p4 >= 3000 && p4 <= 3059):
		return true
	}
	return false
}

func luhn(d string) bool {
	sum, dbl := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if dbl {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
		dbl = !dbl
	}
	return sum%10 == 0
}

// isPhone accepts international numbers (+ or 00 then 8–15 digits),
// national numbers with a 0 trunk prefix (10–11 digits in groups, as in
// "020 7946 0958" or "01 23 45 67 89"), and North American 3-3-4 numbers
// ("(415) 555-0132", "415.555.0132", "1-800-555-0199").
func isPhone(span string, groups []int, seps string, nd int) bool {
	if nd < 7 || nd > 15 || strings.Contains(seps, "/") {
		return false
	}
	if span[0] == '+' {
		return nd >= 8
	}
	if len(groups) < 2 {
		return false // a bare digit run is an id, an amount or an order number more often than a phone
	}
	if span[0] == '0' || span[0] == '(' && len(span) > 1 && span[1] == '0' {
		if strings.HasPrefix(digitsOnly(span), "00") {
			return nd >= 10
		}
		if nd < 10 || nd > 11 {
			return false
		}
		for _, g := range groups {
			if g < 2 {
				return false
			}
		}
		return !strings.Contains(seps, ".") || len(groups) >= 3
	}
	g := groups
	if len(g) == 4 && g[0] == 1 && span[0] == '1' {
		g = g[1:]
	}
	return len(g) == 3 && g[0] == 3 && g[1] == 3 && g[2] == 4 && span[0] != '0' && len(seps) <= 2
}

// ibanLengths are the IBAN lengths of common countries; others must still
// pass mod-97 and end at a word boundary.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21, "CY": 28, "CZ": 24,
	"DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28,
	"IE": 22, "IL": 23, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31,
	"NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "TR": 26,
}

// matchIBAN returns the end of an IBAN starting at s[i] ("DE89 3704 0044
// 0532 0130 00" or compact), or -1 and, when the text there is shaped like
// an IBAN (15+ characters), the end of that shape.
func matchIBAN(s string, i int) (end, shape int) {
	var compact []byte
	var ends []int // end offset in s after each compact char
	j := i
	for j < len(s) && len(compact) < 34 {
		c := s[j]
		if isDigit(c) || isUpper(c) {
			compact = append(compact, c)
			j++
			ends = append(ends, j)
			continue
		}
		if c == ' ' && j+1 < len(s) && (isDigit(s[j+1]) || isUpper(s[j+1])) && len(compact) >= 4 {
			j++
			continue
		}
		break
	}
	try := func(n int) int {
		if n < 15 || n > len(compact) {
			return -1
		}
		end := ends[n-1]
		if end < len(s) && wordChar(s[end]) {
			return -1
		}
		if mod97(compact[:n]) == 1 {
			return end
		}
		return -1
	}
	shape = -1
	if len(compact) >= 15 {
		shape = ends[len(ends)-1]
	}
	if n, ok := ibanLengths[string(compact[:2])]; ok {
		return try(n), shape
	}
	return try(len(compact)), shape
}

func mod97(iban []byte) int {
	r := 0
	rot := append(append([]byte{}, iban[4:]...), iban[:4]...)
	for _, c := range rot {
		if isDigit(c) {
			r = (r*10 + int(c-'0')) % 97
		} else {
			r = (r*100 + int(c-'A'+10)) % 97
		}
	}
	return r
}

// --- IPv6

func findIPv6(s string, add func(string, int, int)) {
	if strings.Count(s, ":") < 2 {
		return
	}
	done := 0 // candidates are expanded around colons; skip those already covered
	for off := 0; off < len(s); {
		c := strings.IndexByte(s[off:], ':')
		if c < 0 {
			return
		}
		c += off
		off = c + 1
		if c < done {
			continue
		}
		i := c
		for i > 0 && (isHex(s[i-1]) || s[i-1] == ':') {
			i--
		}
		j, colons, digits := i, 0, 0
		for j < len(s) && (isHex(s[j]) || s[j] == ':' || s[j] == '.') {
			if s[j] == ':' {
				colons++
			} else if isDigit(s[j]) {
				digits++
			}
			j++
		}
		done = j
		for j > i && (s[j-1] == '.' || s[j-1] == ':' && !strings.HasSuffix(s[i:j], "::")) {
			j--
		}
		if i > 0 && (wordChar(s[i-1]) || s[i-1] == '.') || j < len(s) && wordChar(s[j]) {
			continue // part of a longer word or identifier
		}
		if colons >= 2 && digits > 0 {
			if a, err := netip.ParseAddr(s[i:j]); err == nil && a.Is6() && (colons >= 3 || strings.Contains(s[i:j], "::") && j-i >= 6) {
				add(PIIIP, i, j)
			}
		}
	}
}

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// --- secrets

// secretPrefix is a known credential format: a prefix and the token's
// alphabet and minimum length after it.
type secretPrefix struct {
	prefix string
	min    int
	alpha  func(byte) bool
}

func tokenChar(c byte) bool  { return isAlnum(c) || c == '_' || c == '-' }
func alnumUpper(c byte) bool { return isDigit(c) || isUpper(c) }

var secretPrefixes = []secretPrefix{
	{"sk-", 20, tokenChar},                                                                // OpenAI (sk-, sk-proj-), Anthropic (sk-ant-)
	{"sk_live_", 16, tokenChar}, {"sk_test_", 16, tokenChar}, {"rk_live_", 16, tokenChar}, // Stripe
	{"AKIA", 16, alnumUpper}, {"ASIA", 16, alnumUpper}, // AWS access key ids
	{"ghp_", 30, tokenChar}, {"gho_", 30, tokenChar}, {"ghu_", 30, tokenChar}, {"ghs_", 30, tokenChar}, {"ghr_", 30, tokenChar},
	{"github_pat_", 30, tokenChar}, {"glpat-", 20, tokenChar}, // GitHub, GitLab
	{"xoxb-", 10, tokenChar}, {"xoxp-", 10, tokenChar}, {"xoxa-", 10, tokenChar}, {"xoxs-", 10, tokenChar}, // Slack
	{"AIza", 30, tokenChar}, // Google API keys
	{"hf_", 30, tokenChar},  // Hugging Face
	{"npm_", 30, tokenChar},
}

// secretKeys are names after which a high-entropy value is a secret
// (api_key=..., "password": "...", client-secret: ...), compared lowercased
// with '-' as '_'.
var secretKeys = map[string]bool{
	"api_key": true, "apikey": true, "secret": true, "secret_key": true, "client_secret": true,
	"access_token": true, "auth_token": true, "refresh_token": true, "token": true, "password": true,
	"passwd": true, "pwd": true, "private_key": true, "access_key": true, "secret_access_key": true,
	"aws_secret_access_key": true, "api_secret": true, "x_api_key": true, "authorization": true,
}

func findSecrets(s string, add func(string, int, int)) {
	// Private key blocks.
	for off := 0; ; {
		i := strings.Index(s[off:], "-----BEGIN ")
		if i < 0 {
			break
		}
		i += off
		e := strings.Index(s[i:], "-----END ")
		if e < 0 {
			break
		}
		e += i
		end := strings.Index(s[e+9:], "-----")
		if end < 0 {
			break
		}
		end += e + 9 + 5
		if strings.Contains(s[i:min(i+60, len(s))], "PRIVATE KEY") {
			add(PIISecret, i, end)
		}
		off = end
	}
	// Passwords in URLs: scheme://user:password@host.
	for off := 0; ; {
		i := strings.Index(s[off:], "://")
		if i < 0 {
			break
		}
		i += off + 3
		off = i
		j := i
		for j < len(s) && s[j] != '@' && s[j] != '/' && s[j] > ' ' {
			j++
		}
		if j < len(s) && s[j] == '@' {
			if c := strings.IndexByte(s[i:j], ':'); c >= 0 && j-(i+c+1) >= 1 {
				add(PIISecret, i+c+1, j)
			}
		}
	}
	// Bearer tokens.
	for off := 0; ; {
		i := strings.Index(s[off:], "Bearer ")
		if i < 0 {
			break
		}
		i += off + len("Bearer ")
		j := i
		for j < len(s) && (tokenChar(s[j]) || s[j] == '.' || s[j] == '~' || s[j] == '+' || s[j] == '/' || s[j] == '=') {
			j++
		}
		if j-i >= 16 && entropy(s[i:j]) >= 3 {
			add(PIISecret, i, j)
		}
		off = j
	}
	// One pass over the bytes for known prefixes (at word starts) and for
	// key = value / key: value / "key": "value".
	for i := 0; i < len(s); i++ {
		switch secretClass[s[i]] {
		case 0:
			continue
		case 1:
			if i+1 < len(s) && secretPairs.has(s[i], s[i+1]) && (i == 0 || !wordChar(s[i-1])) {
				if j := matchSecretPrefix(s, i); j > 0 {
					add(PIISecret, i, j)
					i = j - 1
				}
			}
		case 2:
			if v, ve := matchSecretValue(s, i); ve > 0 {
				add(PIISecret, v, ve)
			}
		}
	}
}

// secretPairs holds the first two bytes of the known prefixes.
var secretPairs = func() (p pairSet) {
	for _, x := range secretPrefixes {
		p.add(x.prefix)
	}
	p.add("eyJ")
	return p
}()

// pairSet is a set of byte pairs: which two bytes can start one of a few
// strings, found with one load before the strings themselves are compared.
type pairSet [1 << 16 / 64]uint64

func (p *pairSet) add(s string) {
	k := uint16(s[0])<<8 | uint16(s[1])
	p[k/64] |= 1 << (k % 64)
}

func (p *pairSet) has(a, b byte) bool {
	k := uint16(a)<<8 | uint16(b)
	return p[k/64]&(1<<(k%64)) != 0
}

// secretClass marks the bytes findSecrets looks at: 1 starts a known
// prefix, 2 separates a key from its value.
var secretClass = func() (t [256]uint8) {
	for _, p := range secretPrefixes {
		t[p.prefix[0]] = 1
	}
	t['e'] = 1 // JWTs: eyJ...
	t[':'], t['='] = 2, 2
	return t
}()

// matchSecretPrefix returns the end of a known-format token at s[i], or 0.
func matchSecretPrefix(s string, i int) int {
	if strings.HasPrefix(s[i:], "eyJ") { // a JWT: three base64url parts
		j, dots := i, 0
		for j < len(s) && (tokenChar(s[j]) || s[j] == '.' && j+1 < len(s) && tokenChar(s[j+1])) {
			if s[j] == '.' {
				dots++
			}
			j++
		}
		if dots == 2 && j-i >= 30 {
			return j
		}
		return 0
	}
	for _, p := range secretPrefixes {
		if !strings.HasPrefix(s[i:], p.prefix) {
			continue
		}
		j := i + len(p.prefix)
		for j < len(s) && p.alpha(s[j]) {
			j++
		}
		if tok := s[i+len(p.prefix) : j]; len(tok) >= p.min && hasDigit(tok) && entropy(tok) >= 3 {
			return j
		}
	}
	return 0
}

// matchSecretValue checks whether the separator at s[i] follows a key-like
// name and precedes a high-entropy value, returning the value's span.
func matchSecretValue(s string, i int) (int, int) {
	k := i
	if k > 0 && (s[k-1] == '"' || s[k-1] == '\'') {
		k--
	}
	ke := k
	for k > 0 && (isAlnum(s[k-1]) || s[k-1] == '_' || s[k-1] == '-') {
		k--
	}
	if ke-k < 3 || ke-k > 24 {
		return 0, 0
	}
	var key [24]byte
	for j := k; j < ke; j++ {
		c := s[j]
		if isUpper(c) {
			c += 'a' - 'A'
		} else if c == '-' {
			c = '_'
		}
		key[j-k] = c
	}
	if !secretKeys[string(key[:ke-k])] { // no allocation: the compiler looks the bytes up in place
		return 0, 0
	}
	v := i + 1
	for v < len(s) && (s[v] == ' ' || s[v] == '"' || s[v] == '\'') {
		v++
	}
	if strings.HasPrefix(s[v:], "Bearer ") {
		return 0, 0 // handled with Bearer tokens
	}
	ve := v
	for ve < len(s) && s[ve] > ' ' && s[ve] != '"' && s[ve] != '\'' && s[ve] != ',' && s[ve] != ';' && s[ve] != '}' && s[ve] != ')' {
		ve++
	}
	val := s[v:ve]
	if len(val) >= 8 && (hasDigit(val) || len(val) >= 20) && entropy(val) >= 3 && !placeholderValue(val) {
		return v, ve
	}
	return 0, 0
}

func hasDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			return true
		}
	}
	return false
}

// placeholderValue recognises values that are templates, not secrets.
func placeholderValue(v string) bool {
	l := strings.ToLower(v)
	return strings.HasPrefix(l, "<") || strings.HasPrefix(l, "${") || strings.HasPrefix(l, "{{") ||
		strings.Contains(l, "your_") || strings.Contains(l, "your-") || strings.Contains(l, "xxxx") ||
		strings.Contains(l, "****") || strings.HasPrefix(l, "process.env") || strings.HasPrefix(l, "os.environ")
}

// entropy is the Shannon entropy of s in bits per byte.
func entropy(s string) float64 {
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	h := 0.0
	n := float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}
