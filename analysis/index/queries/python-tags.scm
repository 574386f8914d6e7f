; stagecoder workspace symbols for Python. @name is the symbol's name; the other capture names
; the definition node and its kind (function / class / method decided from the container).
(module (expression_statement (assignment left: (identifier) @name) @definition.constant))
(class_definition name: (identifier) @name) @definition.class
(function_definition name: (identifier) @name) @definition.function
