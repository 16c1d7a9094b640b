package bkfake

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// demoPageRefreshSeconds is how often the settings page looks for new
// failures during the demo, whose builds arrive seconds apart (the page's
// own default is 30 seconds).
const demoPageRefreshSeconds = 2

// demoConfigJS is the settings page's config.js during the demo: the page
// refreshes often and shows a note that says what the demo is, which token
// it connected with, and where the simulated builds are. It builds the
// note with DOM calls, which the page's content security policy allows.
const demoConfigJS = `// kitefix serve --demo: the settings page of the demo.
window.kitefix = Object.assign(window.kitefix || {}, { refreshSeconds: %d });
(function () {
  var org = %s, token = %s, kinds = %s;
  function show() {
    var main = document.querySelector("main");
    if (!main || document.getElementById("demo-note")) return;
    var note = document.createElement("div");
    note.id = "demo-note";
    note.className = "notice success";
    note.setAttribute("role", "note");
    var title = document.createElement("p");
    title.className = "notice-title";
    title.textContent = "Demo: kitefix is connected to a simulated Buildkite organization";
    var p1 = document.createElement("p");
    var a = document.createElement("a");
    a.href = org.url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.textContent = org.name;
    var jump = document.createElement("a");
    jump.href = "#failures-h";
    jump.textContent = "Failures explained";
    p1.append("Four builds of ", a, " fail over the next seconds (" + kinds.join(", ") +
      "). Each arrives as a webhook signed with this connection's secret and appears under ", jump,
      " with its explanation; the build links open the simulated build with kitefix's annotation.");
    var p2 = document.createElement("p");
    var code = document.createElement("code");
    code.textContent = token;
    p2.append("It was connected for you with the demo token ", code,
      ", which works only with this simulated organization: paste it to connect again after a disconnect.");
    note.append(title, p1, p2);
    main.insertBefore(note, main.firstChild);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", show);
  else show();
})();
`

// Page wraps the settings page: its config.js becomes the demo's.
func (d *Demo) Page(page http.Handler) http.Handler {
	js := d.configJS()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/config.js" {
			page.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write([]byte(js))
	})
}

func (d *Demo) configJS() string {
	kinds := make([]string, len(DemoFailures))
	for i, f := range DemoFailures {
		kinds[i] = string(f.Kind)
	}
	return fmt.Sprintf(demoConfigJS, demoPageRefreshSeconds,
		jsValue(map[string]string{"url": d.URL() + "/", "name": DemoOrgName}), jsValue(DemoToken), jsValue(kinds))
}

// jsValue is v as a JavaScript literal; encoding/json escapes <, > and &,
// so it cannot end a script.
func jsValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // strings and maps of strings always encode
	}
	return string(b)
}
