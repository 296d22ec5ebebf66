package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pare-dev/pare/graph"
)

// genaiNote tells what an onnxruntime-genai model folder's
// genai_config.json must say once the model's cache lost heads: the
// runtime allocates the cache from model.decoder.num_key_value_heads and
// num_attention_heads, not from the graph. pare does not write the file
// (it belongs beside the user's output, with the tokenizer); "" when
// there is no such file beside the input or nothing in it to change.
func genaiNote(input string, m *graph.Model) string {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(input), "genai_config.json"))
	if err != nil {
		return ""
	}
	var cfg struct {
		Model struct {
			Decoder struct {
				Heads   *int64 `json:"num_attention_heads"`
				KVHeads *int64 `json:"num_key_value_heads"`
			} `json:"decoder"`
		} `json:"model"`
	}
	if json.Unmarshal(b, &cfg) != nil || cfg.Model.Decoder.KVHeads == nil {
		return ""
	}
	heads, kv := map[int64]bool{}, map[int64]bool{}
	for _, n := range m.Graph.Nodes {
		if n.Op() == "GroupQueryAttention" && n.Domain() == "com.microsoft" {
			heads[n.IntAttr("num_heads", 0)] = true
			kv[n.IntAttr("kv_num_heads", 0)] = true
		}
	}
	if len(kv) == 0 {
		return ""
	}
	if len(kv) > 1 || len(heads) > 1 {
		return "genai_config.json beside the input gives one KV head count for every layer; the written model's layers keep different counts (--scope local keeps one)"
	}
	var h, k int64
	for v := range heads {
		h = v
	}
	for v := range kv {
		k = v
	}
	if *cfg.Model.Decoder.KVHeads == k && (cfg.Model.Decoder.Heads == nil || *cfg.Model.Decoder.Heads == h) {
		return ""
	}
	return fmt.Sprintf("genai_config.json beside the input: the written model needs model.decoder.num_key_value_heads %d (was %d) and num_attention_heads %d in the copy beside it",
		k, *cfg.Model.Decoder.KVHeads, h)
}
