"""Results rendered for readers: publication tables (:mod:`.tables`) in CSV, Markdown, HTML,
LaTeX and Word, figures (:mod:`.figures`) in PNG, TIFF, PDF and SVG, the study report
(:mod:`.report`), every text cell made safe to open in a spreadsheet (:mod:`.cells`)."""
