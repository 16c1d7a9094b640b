// Where the settings page finds the settings API. Served as is by
// `kitefix serve`, where the API is on the same origin and needs no sign-in.
//
// A deployment replaces this file (or defines window.kitefix before app.js
// loads) to point the page at the HTTP API and hand it a bearer token:
//
//   window.kitefix = {
//     apiBase: "https://abc123.execute-api.eu-west-1.amazonaws.com",
//     getToken: async () => (await auth.currentSession()).idToken, // a JWT with the tenant claim
//   };
//
// See README.md next to this file.
window.kitefix = window.kitefix || {};
