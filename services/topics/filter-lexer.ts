// Moved to core/filter-lexer.ts (the floor, issue #11); this re-export goes once every importer uses the new path.
export * from '../../core/filter-lexer.ts';
