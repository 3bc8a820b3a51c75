/**
 * Two projects, both run by `npm test`: unit (pure, no emulator, seconds) and emulator (a real
 * Firestore emulator started once in globalSetup; each test file uses its own project id).
 */
const common = {preset: 'ts-jest', testEnvironment: 'node', testMatch: ['**/*.test.ts']}
module.exports = {
  testTimeout: 120000,
  projects: [
    {...common, displayName: 'unit', roots: ['<rootDir>/test/unit']},
    {
      ...common,
      displayName: 'emulator',
      roots: ['<rootDir>/test/emulator'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
  ],
}
