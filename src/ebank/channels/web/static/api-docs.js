// Starts Swagger UI on the API docs page. It is a file, not an inline script, because the
// Content-Security-Policy allows scripts from this site only. The page names the OpenAPI
// document in data-openapi-url.
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    showExtensions: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
