import {isClosedTransaction} from '../../../src/firestore/transaction'

/** Which answers re-run a transaction from the start: only a transaction the server closed, never another bad request. */
describe('isClosedTransaction', () => {
  const invalid = (message: string) => Object.assign(new Error(`3 INVALID_ARGUMENT: ${message}`), {code: 3})

  test('the emulator’s and the service’s texts for a closed transaction', () => {
    expect(isClosedTransaction(invalid('Transaction is invalid or closed.'))).toBe(true)
    expect(isClosedTransaction(invalid('The referenced transaction has expired or is no longer valid.'))).toBe(true)
  })

  test('other INVALID_ARGUMENT answers and other codes with the same text are not', () => {
    expect(isClosedTransaction(invalid('Document too large'))).toBe(false)
    expect(isClosedTransaction(invalid('too much contention on these documents'))).toBe(false)
    expect(isClosedTransaction(Object.assign(new Error('Transaction is invalid or closed.'), {code: 10}))).toBe(false)
    expect(isClosedTransaction(new Error('Transaction is invalid or closed.'))).toBe(false)
    expect(isClosedTransaction(undefined)).toBe(false)
  })
})
