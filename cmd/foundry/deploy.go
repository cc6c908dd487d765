package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/config"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/provider"
	providerengine "github.com/foundryhq/foundry/provider/engine"
)

// Deployment is one model the built-in engine serves: a base model, or a
// LoRA adapter over one.
type Deployment struct {
	Name string `json:"name"`
	// Base is the base model an adapter runs over ("" for a base model).
	Base       string `json:"base,omitempty"`
	AdapterDir string `json:"adapter_dir,omitempty"`
	Rank       int    `json:"rank,omitempty"` // the adapter's LoRA rank
	// Slots are a base model's decode slots, shared with its adapters.
	Slots int `json:"slots,omitempty"`
	// Adapters and MaxAdapters are a base model's adapter places in use and in all.
	Adapters    int `json:"adapters,omitempty"`
	MaxAdapters int `json:"max_adapters,omitempty"`
}

// DeployRequest is the body of POST /api/v1/deployments.
type DeployRequest struct {
	Name       string `json:"name"`
	Base       string `json:"base"`
	AdapterDir string `json:"adapter_dir"`
}

// deployments serves /api/v1/deployments: the engine's models, and LoRA
// adapters loaded over them and unloaded while the gateway runs.
type deployments struct {
	reg *provider.Registry
	eng *providerengine.Provider // nil when the gateway serves no local models

	mu     sync.Mutex
	models map[string]Deployment
}

// mountDeployments mounts the deployments API on srv for the engine models
// in cfg (already loaded into reg by loadEngine).
func mountDeployments(srv *gateway.Server, reg *provider.Registry, cfg config.Engine) {
	d := &deployments{reg: reg, models: map[string]Deployment{}}
	if p, ok := reg.Get("engine"); ok {
		d.eng, _ = p.(*providerengine.Provider)
	}
	for _, m := range cfg.Models {
		maxAdapters := m.MaxAdapters
		if maxAdapters == 0 && len(m.Adapters) > 0 {
			maxAdapters = 4 // loadEngine's default
		}
		slots := m.Slots
		if slots == 0 {
			slots = 4
		}
		d.models[m.Name] = Deployment{Name: m.Name, Slots: slots, Adapters: len(m.Adapters), MaxAdapters: maxAdapters}
		for _, a := range m.Adapters {
			d.models[a.Name] = Deployment{Name: a.Name, Base: m.Name, AdapterDir: a.Path, Rank: adapterRank(a.Path)}
		}
	}
	srv.Handle("GET /api/v1/deployments", srv.AdminOnly(d.list))
	srv.Handle("POST /api/v1/deployments", srv.AdminOnly(d.create))
	srv.Handle("DELETE /api/v1/deployments/{name}", srv.AdminOnly(d.remove))
}

func (d *deployments) list(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	out := make([]Deployment, 0, len(d.models))
	for _, m := range d.models {
		out = append(out, m)
	}
	d.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	api.WriteJSON(w, http.StatusOK, map[string]any{"data": out})
}

func (d *deployments) create(w http.ResponseWriter, r *http.Request) {
	var req DeployRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		api.WriteError(w, api.BadRequest("", "deploy: the body must be JSON {\"name\", \"base\", \"adapter_dir\"}: "+err.Error()))
		return
	}
	bad := func(param, format string, args ...any) {
		api.WriteError(w, api.BadRequest(param, fmt.Sprintf("deploy %q: ", req.Name)+fmt.Sprintf(format, args...)))
	}
	switch {
	case req.Name == "" || strings.Contains(req.Name, "/"):
		bad("name", "give the model name clients will send, without a slash")
		return
	case req.Base == "":
		bad("base", "give the engine model it runs over (base)")
		return
	case req.AdapterDir == "":
		bad("adapter_dir", "give the PEFT adapter directory (adapter_dir), as foundry train --out writes it")
		return
	case d.eng == nil:
		bad("base", "this gateway serves no engine models: start foundry serve with --model %s=PATH", req.Base)
		return
	}
	if _, err := os.Stat(filepath.Join(req.AdapterDir, "adapter_config.json")); err != nil {
		bad("adapter_dir", "%s is not a PEFT adapter directory (no adapter_config.json readable by the gateway): %v", req.AdapterDir, err)
		return
	}
	if t, ok := d.reg.Aliases()[req.Name]; ok && t != "engine/"+req.Name {
		bad("name", "the gateway already maps %q to %q (a config alias); pick another name", req.Name, t)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock() // one deployment at a time: adapter places are counted here
	base, ok := d.models[req.Base]
	switch {
	case !ok:
		bad("base", "no engine model %q to put it on (serving %s)", req.Base, strings.Join(d.baseNames(), ", "))
		return
	case base.Base != "":
		bad("base", "%q is itself an adapter (over %q); deploy over a base model", req.Base, base.Base)
		return
	case base.MaxAdapters == 0:
		bad("base", "engine model %q was started without room for adapters: restart it with foundry serve --max-adapters N (or max_adapters under engine.models in the config)", req.Base)
		return
	}
	if err := d.eng.AddAdapter(req.Base, req.Name, req.AdapterDir); err != nil {
		bad("adapter_dir", "%v", err)
		return
	}
	d.reg.Alias(req.Name, "engine/"+req.Name) // the bare name, as loadEngine does at start
	base.Adapters++
	d.models[req.Base] = base
	dep := Deployment{Name: req.Name, Base: req.Base, AdapterDir: req.AdapterDir, Rank: adapterRank(req.AdapterDir)}
	d.models[req.Name] = dep
	api.WriteJSON(w, http.StatusCreated, dep)
}

func (d *deployments) remove(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok := d.models[name]
	if !ok || m.Base == "" || d.eng == nil {
		api.WriteError(w, api.NewError(http.StatusNotFound, "deployment_not_found",
			fmt.Sprintf("undeploy %q: the engine serves no adapter of that name (base models stay until a restart)", name)))
		return
	}
	if err := d.eng.RemoveAdapter(name); err != nil {
		api.WriteError(w, api.NewError(http.StatusInternalServerError, "", err.Error()))
		return
	}
	// The alias stays: calls to the bare name now get the engine's clear
	// "not served" error instead of going to another provider.
	delete(d.models, name)
	if b, ok := d.models[m.Base]; ok {
		b.Adapters--
		d.models[m.Base] = b
	}
	w.WriteHeader(http.StatusNoContent)
}

func (d *deployments) baseNames() []string {
	var out []string
	for _, m := range d.models {
		if m.Base == "" {
			out = append(out, m.Name)
		}
	}
	sort.Strings(out)
	return out
}

// adapterRank reads r from a PEFT adapter_config.json (0 if unreadable).
func adapterRank(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
	if err != nil {
		return 0
	}
	var c struct {
		R int `json:"r"`
	}
	_ = json.Unmarshal(b, &c)
	return c.R
}

func newDeployCmd() *cobra.Command {
	var cfgPath, base, adapter, serverURL string
	cmd := &cobra.Command{
		Use:   "deploy NAME --base BASE --adapter DIR",
		Short: "Serve a trained LoRA adapter under a model name on a running gateway, without a restart",
		Long: `Load a PEFT LoRA adapter (as foundry train --out writes it) over an engine model the
running gateway serves, under NAME: apps call it as NAME (or engine/NAME), and it shares the
base's weights and decode batches. The base needs adapter places: start the gateway with
foundry serve --model NAME=PATH --max-adapters 4 (or max_adapters under engine.models in the
config). The adapter directory is read by the gateway.
The gateway is --url (default: FOUNDRY_ADDR); the admin key is FOUNDRY_ADMIN_KEY.
For serving elsewhere (vLLM, llama.cpp, Ollama) see docs/deploy.md.`,
		Example: `  foundry deploy support-v3 --base qwen --adapter runs/support-v3
  foundry deploy list
  foundry deploy rm support-v3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if base == "" || adapter == "" {
				return errors.New("deploy: give the engine model it runs over (--base) and the adapter directory (--adapter)")
			}
			abs, err := filepath.Abs(adapter)
			if err != nil {
				return err
			}
			if _, err := os.Stat(abs); err == nil {
				adapter = abs // the gateway may run elsewhere in the file system
			}
			body, _ := json.Marshal(DeployRequest{Name: args[0], Base: base, AdapterDir: adapter})
			var dep Deployment
			if err := deployCall(cmd, cfgPath, serverURL, "POST", "/api/v1/deployments", body, &dep); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deployed %s over %s (rank %d) from %s: call it as model %q\n", dep.Name, dep.Base, dep.Rank, dep.AdapterDir, dep.Name)
			return nil
		},
	}
	cmd.PersistentFlags().StringVarP(&cfgPath, "config", "c", "", "config file (gateway address and admin key; FOUNDRY_ADDR and FOUNDRY_ADMIN_KEY override)")
	cmd.PersistentFlags().StringVar(&serverURL, "url", "", "the gateway, e.g. http://127.0.0.1:8080 (default: FOUNDRY_ADDR)")
	cmd.Flags().StringVar(&base, "base", "", "the engine model the adapter runs over")
	cmd.Flags().StringVar(&adapter, "adapter", "", "the PEFT adapter directory (adapter_config.json, adapter_model.safetensors)")

	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the engine's models and the adapters over them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var res struct {
				Data []Deployment `json:"data"`
			}
			if err := deployCall(cmd, cfgPath, serverURL, "GET", "/api/v1/deployments", nil, &res); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tBASE\tRANK\tSLOTS\tADAPTERS\tADAPTER DIR")
			for _, d := range res.Data {
				base, rank, slots, adapters := d.Base, fmt.Sprint(d.Rank), fmt.Sprint(d.Slots), fmt.Sprintf("%d/%d", d.Adapters, d.MaxAdapters)
				if d.Base == "" {
					base, rank = "-", "-"
				} else {
					slots, adapters = "-", "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, base, rank, slots, adapters, d.AdapterDir)
			}
			return tw.Flush()
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "rm NAME",
		Short: "Stop serving an adapter and unload it (its requests in flight fail)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := deployCall(cmd, cfgPath, serverURL, "DELETE", "/api/v1/deployments/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "undeployed %s\n", args[0])
			return nil
		},
	})
	return cmd
}

// deployCall sends an admin API request to the gateway and decodes its
// JSON answer into out (unless nil).
func deployCall(cmd *cobra.Command, cfgPath, serverURL, method, path string, body []byte, out any) error {
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		return err
	}
	if serverURL == "" {
		serverURL = strings.TrimSuffix(gatewayURL(cfg.Addr), "/v1")
	}
	req, err := http.NewRequestWithContext(cmd.Context(), method, strings.TrimSuffix(serverURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if cfg.AdminKey != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.AdminKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("deploy: reach the gateway at %s: %w (is foundry serve running? give --url)", serverURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		if e, ok := api.ParseError(resp.StatusCode, b); ok {
			return errors.New(e.Message)
		}
		return fmt.Errorf("deploy: %s %s: %s %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}
