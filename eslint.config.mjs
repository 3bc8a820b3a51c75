// typescript-eslint's recommended rules over the sources, tests, bench and scripts (`npm run lint`).
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const node = Object.fromEntries(
  [
    'process',
    'console',
    'require',
    'module',
    '__dirname',
    'Buffer',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'setImmediate',
  ].map((g) => [g, 'readonly']),
)

export default tseslint.config(
  {ignores: ['dist/', 'node_modules/', 'bench/results/']},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // Terminal escapes (\x1b) and the ASCII range (\x00-\x7f) are what these patterns are about.
      'no-control-regex': 'off',
      // `{dropped: _, ...rest}` and `_arg` name what is deliberately left out.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true},
      ],
    },
  },
  {
    // Plain CommonJS: the bin script, the demo and test preloads that Node loads with --require.
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: {sourceType: 'commonjs', globals: node},
    rules: {'@typescript-eslint/no-require-imports': 'off'},
  },
  {
    // Tests and the bench read documents and JSON output back loosely typed, on purpose; src/ has no `any`.
    files: ['test/**', 'bench/**'],
    rules: {'@typescript-eslint/no-explicit-any': 'off'},
  },
)
