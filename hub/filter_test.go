package hub

import "testing"

func TestGlobMatchesLikePythonFnmatch(t *testing.T) {
	cases := []struct {
		pat, name string
		want      bool
	}{
		{"*.json", "config.json", true},
		{"*.json", "onnx/config.json", true}, // fnmatch's * crosses "/"
		{"*.json", "config.jsonx", false},
		{"tokenizer.model", "tokenizer.model", true},
		{"tokenizer.model", "sub/tokenizer.model", false},
		{"model-?????-of-*.safetensors", "model-00001-of-00002.safetensors", true},
		{"[!a]*.txt", "b.txt", true},
		{"[!a]*.txt", "a.txt", false},
		{"[ab].txt", "b.txt", true},
		{"onnx/", "onnx/model.onnx", true},
		{"onnx/", "onnx", false},
		{"a+b(c).json", "a+b(c).json", true},
		{"[unclosed", "[unclosed", true},
	}
	for _, c := range cases {
		if got := globRegexp(c.pat).MatchString(c.name); got != c.want {
			t.Errorf("fnmatch(%q, %q) = %v, want %v", c.name, c.pat, got, c.want)
		}
	}
}

func TestDefaultFilter(t *testing.T) {
	repo := []string{"config.json", "model.safetensors", "model.safetensors.index.json", "tokenizer.model",
		"merges.txt", "chat_template.jinja", "pytorch_model.bin", "model.gguf", "onnx/model.onnx", "onnx/config.json",
		"original/params.json", "original/consolidated.00.pth", "README.md", ".gitattributes", "flax_model.msgpack"}
	f := newFileFilter(nil, nil, repo)
	var got []string
	for _, n := range repo {
		if f.match(n) {
			got = append(got, n)
		}
	}
	want := "config.json model.safetensors model.safetensors.index.json tokenizer.model merges.txt chat_template.jinja"
	if g := join(got); g != want {
		t.Fatalf("default filter kept %q, want %q", g, want)
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

func TestValidateNames(t *testing.T) {
	for _, ok := range []string{"gpt2", "org/name", "Qwen/Qwen2.5-0.5B-Instruct", "a_b/c.d-e"} {
		if err := ValidateRepoID(ok); err != nil {
			t.Errorf("ValidateRepoID(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "..", "a/..", "../a", "/a", "a/", "a/b/c", "a--b/c", "a/b.git", ".a/b", "a/b.", "a b/c", "a/b\x00"} {
		if err := ValidateRepoID(bad); err == nil {
			t.Errorf("ValidateRepoID(%q) accepted", bad)
		}
	}
	for _, ok := range []string{"config.json", "a/b/c.json", "model-00001-of-00002.safetensors", ".gitattributes", "a..b"} {
		if err := ValidateFilename(ok); err != nil {
			t.Errorf("ValidateFilename(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a/", `a\b`, "C:x", "a/\x00"} {
		if err := ValidateFilename(bad); err == nil {
			t.Errorf("ValidateFilename(%q) accepted", bad)
		}
	}
}
