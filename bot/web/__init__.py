"""Static files of the web shell: the page's style and script, and the embeddable widget."""
