{
  "targets": [
    {
      "target_name": "addon",
      "sources": ["src/addon.c"],
      "cflags!": ["-O3"],
      "cflags": ["-g", "-O0"]
    }
  ]
}
