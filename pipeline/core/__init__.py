"""The bottom layer, imported by every other: errors and their one-line form, paths and safe
names, YAML and settings schemas, name -> class plug-ins, atomic outputs, dotted keys. Imports
nothing of the package."""
