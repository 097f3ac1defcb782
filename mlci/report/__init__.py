"""The report: rendering, publishing, the untrusted artifact, plot images on the images branch."""
