"""The portal's pages that combine several apps (dashboard, request wizard),
its navigation context and project switcher. Pages of one app live in that app's
views; this package sits above the apps (controlplane → apps)."""
