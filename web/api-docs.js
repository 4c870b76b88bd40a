// The API's OpenAPI document, rendered by Swagger UI from this server (no CDN). The
// document's first server is this demo's API function, so "Try it out" calls it.
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    defaultModelsExpandDepth: 0,
  });
});
