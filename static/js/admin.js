// The Django admin, as the project serves it (templates/admin/base_site.html adds this file).
"use strict";

// Django's two-box filter widget (SelectFilter2.js: a user's groups and permissions) names the search icon in
// each box's filter label with aria-label on a plain <span>, where ARIA allows no name (axe:
// aria-prohibited-attr), so the label may read nothing. As an image the icon keeps its name. The widget is
// built on "load"; this runs after every "load" listener.
window.addEventListener("load", () => {
  setTimeout(() => {
    for (const icon of document.querySelectorAll(".selector .search-label-icon[aria-label]:not([role])")) {
      icon.setAttribute("role", "img");
    }
  });
});
